"""The Opsgenie sink: Alert API v2, create on firing and close by alias on resolve.

A firing alert is ``POST {url}/v2/alerts`` and a resolved one ``POST
{url}/v2/alerts/{alias}/close?identifierType=alias``, where ``url`` is
``https://api.opsgenie.com`` unless the alerts config gives another (the EU instance,
``https://api.eu.opsgenie.com``). Each request carries ``Authorization: GenieKey <key>``,
the key of an API integration (``tokenFrom`` in the alerts config), held as a
:class:`~pydantic.SecretStr`.

``alias`` is ``headroom-`` + the alert's fingerprint (PagerDuty's dedup key), so a repeat
is folded into the open alert and a resolve closes it. A create carries ``message`` (the
summary, at most 130 characters), ``description`` (the summary and its link), ``priority``
(critical P1, warning P3, info P5), ``source``, ``entity`` (the target), ``tags`` and
``details`` (string values: the key, the event, the numbers). Opsgenie answers 202.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from headroom.controller.alerts.base import Alert, HttpPost, Severity, Status, UrlSink

if TYPE_CHECKING:  # alerts/config.py builds this sink (and imports this module)
    from headroom.controller.alerts.config import Secret, SinkConfig

API_URL = "https://api.opsgenie.com"
MESSAGE_MAX = 130  # the API's limit on message
PRIORITY = {Severity.CRITICAL: "P1", Severity.WARNING: "P3", Severity.INFO: "P5"}


def alias(alert: Alert) -> str:
    return f"headroom-{alert.fingerprint}"


def create(alert: Alert) -> dict[str, Any]:
    """The create-alert body for a firing alert."""
    message = alert.summary
    if len(message) > MESSAGE_MAX:
        message = message[: MESSAGE_MAX - 1] + "…"
    known = {"key": alert.key, "policy": alert.policy, "alert": alert.name,
             "target": alert.target, "event": alert.event, "link": alert.link}  # fmt: skip
    details = {name: value for name, value in known.items() if value}
    details.update({name: f"{value:g}" for name, value in alert.numbers.items()})
    return {
        "message": message,
        "alias": alias(alert),
        "description": alert.summary + (f"\n\n{alert.link}" if alert.link else ""),
        "priority": PRIORITY[alert.severity],
        "source": "Headroom",
        "tags": ["headroom", alert.policy, alert.name, alert.severity.value],
        "details": details,
        **({"entity": alert.target} if alert.target else {}),
    }


@dataclass(eq=False)
class OpsgenieSink(UrlSink):
    """Creates (firing) or closes (resolved) one Opsgenie alert per alert, at ``url``."""

    api_key: SecretStr

    def send(self, alerts: Sequence[Alert]) -> None:
        headers = {"Authorization": f"GenieKey {self.api_key.get_secret_value()}"}
        for alert in alerts:
            if alert.status is Status.RESOLVED:
                path = f"/v2/alerts/{urllib.parse.quote(alias(alert), safe='')}/close"
                note = {"source": "Headroom", "note": alert.summary[:25000]}
                self.deliver(json.dumps(note).encode(), headers, path + "?identifierType=alias")
            else:
                self.deliver(json.dumps(create(alert)).encode(), headers, "/v2/alerts")


# -- from the alerts config: the opsgenie row of alerts/config.py's SINKS


def opsgenie(
    name: str, config: SinkConfig, secret: Secret, url: str | None, post: HttpPost
) -> OpsgenieSink:
    key = secret(config.token_from, "tokenFrom")
    assert key is not None  # SinkConfig requires it
    return OpsgenieSink(name, url or API_URL, key, post=post)
