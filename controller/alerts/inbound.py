"""``POST /hooks/alertmanager``: Alertmanager's webhook turns alerts into surges.

A team routes an alert (say, "checkout QPS doubled in 5 minutes") to Headroom with a
``webhook_config``; an alert whose labels name a policy target triggers an emergency
scale-up — a short surge event with a factor — and its resolve ends the surge early:

- ``headroom_policy``, ``headroom_target`` (labels, required): which target;
- ``headroom_factor`` (label or annotation, optional): demand multiplier, default 2,
  capped at the policy's ``alertRules.surgeMaxFactor``;
- ``headroom_duration`` (label or annotation, optional, e.g. ``30m``): how long, default
  and cap the policy's ``alertRules.surgeMaxDuration``.

A request must carry ``Authorization: Bearer <token>`` or Headroom's webhook signature
(``X-Headroom-Timestamp`` / ``X-Headroom-Signature``, see ``webhook.py``), whichever the
config sets. The whole payload is checked before anything is applied: malformed (400),
unauthenticated (401), oversized (413), not JSON (415) or naming an unknown policy or
target (422) — a clear one-line message, and nothing changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from headroom.controller.alerts.receiver import HookServer
from headroom.controller.alerts.webhook import verify_signature
from headroom.controller.surge import Surge, SurgeEvents
from headroom.policies.errors import AlertConfigError
from headroom.policies.policy import PolicySpec, parse_duration

PATH = "/hooks/alertmanager"
POLICY_LABEL = "headroom_policy"
TARGET_LABEL = "headroom_target"
FACTOR_KEY = "headroom_factor"
DURATION_KEY = "headroom_duration"
DEFAULT_FACTOR = 2.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class AmAlert(_Strict):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    startsAt: str = ""  # noqa: N815 - Alertmanager's field names
    endsAt: str = ""  # noqa: N815
    fingerprint: str = ""


class AmWebhook(_Strict):
    """Alertmanager's webhook payload, version 4 (the fields Headroom reads)."""

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupKey: str = ""  # noqa: N815
    alerts: list[AmAlert] = Field(min_length=1, max_length=1000)


@dataclass(frozen=True)
class _Change:
    start: Surge | None  # a surge to start (or renew)
    end: str | None  # the key of a surge to end
    policy: str
    target: str


class Rejected(AlertConfigError):
    """A request refused with ``status`` and a one-line ``message`` (caught in ``handle``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AlertmanagerReceiver:
    """Checks and maps Alertmanager webhooks onto ``surges`` for the known policies."""

    def __init__(
        self,
        policies: Callable[[], Mapping[str, PolicySpec]],
        surges: SurgeEvents,
        *,
        token: SecretStr | None = None,
        hmac_secret: SecretStr | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        if token is None and hmac_secret is None:
            raise ValueError("the inbound receiver needs a token or an HMAC secret")
        self.policies = policies
        self.surges = surges
        self._token = token
        self._hmac = hmac_secret
        self._now = now

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """One request: ``(status, answer)``; nothing is applied unless it is all valid."""
        try:
            self._authenticate(headers, body)
            payload = self._parse(headers, body)
            changes = self._map(payload)
        except Rejected as err:
            return err.status, {"error": str(err)}
        started, ended = [], []
        for change in changes:
            if change.start is not None:
                self.surges.start_surge(change.start)
                started.append({"key": change.start.key, "policy": change.policy,
                                "target": change.target, "factor": change.start.factor,
                                "end": change.start.end})  # fmt: skip
            elif change.end is not None and self.surges.end_surge(change.end, self._now()):
                ended.append({"key": change.end, "policy": change.policy, "target": change.target})
        return 200, {"started": started, "ended": ended}

    def _authenticate(self, headers: Mapping[str, str], body: bytes) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        auth = lower.get("authorization", "")
        if self._token is not None and auth.startswith("Bearer "):
            given = auth.removeprefix("Bearer ").strip().encode()
            if hmac.compare_digest(given, self._token.get_secret_value().encode()):
                return
            raise Rejected(401, "the bearer token is not valid")
        if self._hmac is not None and "x-headroom-signature" in lower:
            problem = verify_signature(self._hmac.get_secret_value(), headers, body)
            if problem is None:
                return
            raise Rejected(401, f"signature rejected: {problem}")
        wanted = " or ".join(
            w for w, on in (("a bearer token", self._token), ("a signature", self._hmac)) if on
        )
        raise Rejected(401, f"authentication required ({wanted})")

    @staticmethod
    def _parse(headers: Mapping[str, str], body: bytes) -> AmWebhook:
        ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        if ctype and "json" not in ctype.lower():
            raise Rejected(415, f"content type {ctype[:60]!r} is not JSON")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise Rejected(400, "the body is not JSON") from None
        if not isinstance(data, dict):
            raise Rejected(400, "expected an Alertmanager webhook object (version 4)")
        try:
            return AmWebhook.model_validate(data)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise Rejected(400, f"{where}: {first['msg']}"[:300]) from None

    def _map(self, payload: AmWebhook) -> list[_Change]:
        policies = self.policies()
        now = self._now()
        changes: list[_Change] = []
        for i, alert in enumerate(payload.alerts):
            where = f"alerts[{i}]"
            policy_name = alert.labels.get(POLICY_LABEL)
            target_name = alert.labels.get(TARGET_LABEL)
            if not policy_name or not target_name:
                raise Rejected(422, f"{where}: labels {POLICY_LABEL} and {TARGET_LABEL} "
                               "are required")  # fmt: skip
            spec = policies.get(policy_name)
            if spec is None:
                raise Rejected(422, f"{where}: unknown policy {policy_name[:100]!r}")
            if target_name not in {t.name for t in spec.targets}:
                raise Rejected(422, f"{where}: policy {spec.name} has no target "
                               f"{target_name[:100]!r}")  # fmt: skip
            key = alert.fingerprint or _fingerprint(alert.labels)
            if alert.status == "resolved":
                changes.append(_Change(None, key, spec.name, target_name))
                continue
            factor = _number(alert, FACTOR_KEY, where, DEFAULT_FACTOR)
            rules = spec.alert_rules
            if not factor >= 1.0:
                raise Rejected(422, f"{where}: {FACTOR_KEY} must be at least 1")
            factor = min(factor, rules.surge_max_factor)
            duration = _duration(alert, where, rules.surge_max_duration)
            reason = alert.labels.get("alertname", "alert")[:80]
            surge = Surge(key, spec.name, target_name, factor, now, now + duration, reason,
                          dict(spec.event_selector))  # fmt: skip
            changes.append(_Change(surge, None, spec.name, target_name))
        return changes


def _value(alert: AmAlert, key: str) -> str | None:
    return alert.labels.get(key) or alert.annotations.get(key)


def _number(alert: AmAlert, key: str, where: str, default: float) -> float:
    text = _value(alert, key)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise Rejected(422, f"{where}: {key} {text[:40]!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise Rejected(422, f"{where}: {key} must be finite")
    return value


def _duration(alert: AmAlert, where: str, cap: float) -> float:
    text = _value(alert, DURATION_KEY)
    if text is None:
        return cap
    try:
        seconds = parse_duration(text)
    except ValueError as err:
        raise Rejected(422, f"{where}: {DURATION_KEY}: {str(err)[:80]}") from None
    if seconds <= 0:
        raise Rejected(422, f"{where}: {DURATION_KEY} must be positive")
    return min(seconds, cap)


def _fingerprint(labels: Mapping[str, str]) -> str:
    text = "\x00".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def serve_inbound(
    receiver: AlertmanagerReceiver, host: str = "127.0.0.1", port: int = 0,
    max_body: int = 256 * 1024,
) -> HookServer:  # fmt: skip
    """Serve ``receiver`` at ``http://host:port/hooks/alertmanager`` (loopback by default)."""
    return HookServer({PATH: receiver.handle}, host, port, max_body)
