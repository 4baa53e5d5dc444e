"""The Alertmanager sink: ``POST /api/v2/alerts``, so Headroom's alerts join the team's
routing, grouping, inhibition and silences.

Each alert becomes a postable alert with labels ``alertname`` (``Headroom`` + the name in
CamelCase, e.g. ``HeadroomForecastMiss``), ``severity``, ``headroom_policy``,
``headroom_target`` (when there is one) and ``headroom_event`` (when there is one); the
summary, key and numbers go in annotations. Alertmanager forgets an alert at its
``endsAt``, so firing alerts are re-sent every :attr:`resend_interval` seconds with an
``endsAt`` a few intervals ahead (as Prometheus does); a resolved alert is sent once with
``endsAt`` = now. ``startsAt`` is the condition's start, never later than now. An
optional bearer token is held as a :class:`~pydantic.SecretStr`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from headroom.controller.alerts.base import Alert, HttpPost, Status, UrlSink, iso

if TYPE_CHECKING:  # alerts/config.py builds this sink (and imports this module)
    from headroom.controller.alerts.config import Secret, SinkConfig


def alertname(alert: Alert) -> str:
    return "Headroom" + alert.name[:1].upper() + alert.name[1:]


def labels(alert: Alert) -> dict[str, str]:
    out = {
        "alertname": alertname(alert),
        "severity": alert.severity.value,
        "headroom_policy": alert.policy,
    }
    if alert.target:
        out["headroom_target"] = alert.target
    if alert.event:
        out["headroom_event"] = alert.event
    return out


@dataclass(eq=False)
class AlertmanagerSink(UrlSink):
    """POSTs postable alerts to the Alertmanager at ``url`` (its base URL)."""

    token: SecretStr | None = None
    _: KW_ONLY
    resend_interval: float | None = 60.0
    wall: Callable[[], float] = field(default=time.time, repr=False)

    def postable(self, alert: Alert) -> dict[str, Any]:
        now = self.wall()
        ends = (
            now
            if alert.status is Status.RESOLVED
            else now + 4 * max(self.resend_interval or 60.0, 60.0)
        )
        annotations = {"summary": alert.summary, "headroom_key": alert.key}
        annotations.update({k: f"{v:g}" for k, v in alert.numbers.items()})
        out: dict[str, Any] = {
            "labels": labels(alert),
            "annotations": annotations,
            "startsAt": iso(min(alert.since, now)),
            "endsAt": iso(ends),
        }
        if alert.link:
            out["generatorURL"] = alert.link
        return out

    def send(self, alerts: Sequence[Alert]) -> None:
        body = json.dumps([self.postable(a) for a in alerts]).encode()
        headers = {}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token.get_secret_value()}"
        self.deliver(body, headers, "/api/v2/alerts")


# -- from the alerts config: the alertmanager row of alerts/config.py's SINKS


def alertmanager(
    name: str, config: SinkConfig, secret: Secret, url: str | None, post: HttpPost
) -> AlertmanagerSink:
    assert url is not None  # SinkConfig requires it
    token = secret(config.token_from, "tokenFrom")
    return AlertmanagerSink(name, url, token, post=post, resend_interval=config.resend_interval)
