"""The PagerDuty sink: Events API v2, ``trigger`` and ``resolve`` with a stable dedup key.

One event per alert (the API takes one at a time) to ``https://events.pagerduty.com/v2/enqueue``
(or a configured URL). ``dedup_key`` is ``headroom-`` + the alert's fingerprint, so a
resolve closes the incident its trigger opened and a repeated trigger is folded into it.
A trigger carries ``payload.summary`` (at most 1024 characters), ``source`` (the policy),
``severity`` (critical / warning / info), ``timestamp``, ``component`` (the target),
``group`` (the policy), ``class`` (the alert name) and ``custom_details`` (the numbers).
PagerDuty answers 202. The routing key is held as a :class:`~pydantic.SecretStr`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from headroom.controller.alerts.base import Alert, HttpPost, Status, iso, post_checked, urllib_post

if TYPE_CHECKING:  # alerts/config.py builds this sink (and imports this module)
    from headroom.controller.alerts.config import Secret, SinkConfig

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


def dedup_key(alert: Alert) -> str:
    return f"headroom-{alert.fingerprint}"


def event(alert: Alert, routing_key: str) -> dict[str, Any]:
    """The Events API v2 body for one alert."""
    if alert.status is Status.RESOLVED:
        return {
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key(alert),
        }
    details: dict[str, Any] = {"key": alert.key, **alert.numbers}
    if alert.event:
        details["event"] = alert.event
    payload: dict[str, Any] = {
        "summary": alert.summary[:1024],
        "source": f"headroom/{alert.policy}",
        "severity": alert.severity.value,
        "timestamp": iso(alert.since),
        "group": alert.policy,
        "class": alert.name,
        "custom_details": details,
    }
    if alert.target:
        payload["component"] = alert.target
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(alert),
        "payload": payload,
        "client": "Headroom",
    }
    if alert.link:
        body["client_url"] = alert.link
        body["links"] = [{"href": alert.link, "text": alert.key}]
    return body


@dataclass(eq=False)
class PagerDutySink:
    """Sends each alert as one Events API v2 event to ``url``."""

    name: str
    routing_key: SecretStr
    url: str = field(default=EVENTS_URL, repr=False)
    post: HttpPost = field(default=urllib_post, repr=False)
    resend_interval: float | None = field(default=None, init=False)

    def send(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            body = json.dumps(event(alert, self.routing_key.get_secret_value())).encode()
            post_checked(self.post, self.name, self.url, body, {})


# -- from the alerts config: the pagerduty row of alerts/config.py's SINKS


def pagerduty(
    name: str, config: SinkConfig, secret: Secret, url: str | None, post: HttpPost
) -> PagerDutySink:
    key = secret(config.routing_key_from, "routingKeyFrom")
    assert key is not None  # SinkConfig requires it
    return PagerDutySink(name, key, url or EVENTS_URL, post)
