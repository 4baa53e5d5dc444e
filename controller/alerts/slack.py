"""The Slack sink: an incoming webhook, one Block Kit message per group of alerts.

The message has a plain ``text`` fallback (notifications, screen readers) and blocks:
a ``header`` (status and policy), then per alert a ``section`` with its one-line
summary and ``fields`` with the numbers, and a ``context`` with its identity. The
webhook URL is itself the secret: it is held as a :class:`~pydantic.SecretStr`.
Slack answers ``200 ok``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from headroom.controller.alerts.base import (
    Alert,
    HttpPost,
    Severity,
    Status,
    post_checked,
    urllib_post,
)

if TYPE_CHECKING:  # alerts/config.py builds this sink (and imports this module)
    from headroom.controller.alerts.config import Secret, SinkConfig

_ICON = {
    Severity.CRITICAL: ":rotating_light:",
    Severity.WARNING: ":warning:",
    Severity.INFO: ":information_source:",
}
MAX_FIELDS = 10  # Slack's limit per section
MAX_BLOCKS = 50  # per message


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def blocks(alerts: Sequence[Alert]) -> dict[str, Any]:
    """The Block Kit payload for ``alerts`` (one policy)."""
    policy = alerts[0].policy if alerts else "-"
    firing = [a for a in alerts if a.status is Status.FIRING]
    title = f"Headroom {policy}: {len(firing)} firing, {len(alerts) - len(firing)} resolved"
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}}
    ]
    for alert in alerts:
        icon = ":white_check_mark:" if alert.status is Status.RESOLVED else _ICON[alert.severity]
        section: dict[str, Any] = {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{icon} *{alert.name}* {alert.summary}"[:3000]},
        }
        fields = [
            {"type": "mrkdwn", "text": f"*{k}*\n{_number(v)}"}
            for k, v in list(alert.numbers.items())[:MAX_FIELDS]
        ]
        if fields:
            section["fields"] = fields
        context = f"`{alert.key}` · {alert.severity.value}"
        if alert.event:
            context += f" · event {alert.event}"
        if alert.link:
            context += f" · <{alert.link}|details>"
        out.append(section)
        out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": "\n".join(a.summary for a in alerts)[:3000], "blocks": out[:MAX_BLOCKS]}


@dataclass(eq=False)
class SlackSink:
    """Posts each group of alerts as one Block Kit message to the webhook ``url``."""

    name: str
    url: SecretStr
    post: HttpPost = field(default=urllib_post, repr=False)
    resend_interval: float | None = field(default=None, init=False)

    def send(self, alerts: Sequence[Alert]) -> None:
        body = json.dumps(blocks(alerts)).encode()
        post_checked(self.post, self.name, self.url.get_secret_value(), body, {})


# -- from the alerts config: the slack row of alerts/config.py's SINKS


def slack(
    name: str, config: SinkConfig, secret: Secret, url: str | None, post: HttpPost
) -> SlackSink:
    assert url is not None  # SinkConfig requires urlFrom: a Slack webhook URL is a secret
    return SlackSink(name, SecretStr(url), post)
