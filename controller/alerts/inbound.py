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
config sets. The credentials are checked on the headers before the body is read
(:meth:`AlertmanagerReceiver.authorize`; a signature's timestamp there, the HMAC over
the body after), and a signature is accepted once: it is remembered for the tolerance
window, so a replay within it is 401 and one after it is stale. (A bearer token cannot
tell a replay from Alertmanager's own re-sends; use the signature where that matters.)
The whole payload is checked before anything is applied: malformed (400),
unauthenticated (401), oversized (413), not JSON (415) or naming an unknown policy or
target (422) — a clear one-line message, and nothing changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from headroom.controller.alerts.receiver import HookServer
from headroom.controller.alerts.webhook import (
    DEFAULT_TOLERANCE,
    SIGNATURE_HEADER,
    check_timestamp,
    verify_signature,
)
from headroom.controller.surge import Surge, SurgeEvents
from headroom.policies.errors import AlertConfigError
from headroom.policies.policy import PolicySpec
from headroom.policies.quantities import parse_duration

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
    namespace: str | None = None  # the policy's, when the receiver's map says it


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
        wall: Callable[[], float] = time.time,
    ) -> None:
        """``now``: the surges' clock (scaled in the demo); ``wall``: real time, which
        signatures' timestamps are checked against."""
        if token is None and hmac_secret is None:
            raise ValueError("the inbound receiver needs a token or an HMAC secret")
        for secret in (token, hmac_secret):
            if secret is not None and not secret.get_secret_value().strip():
                raise ValueError("the inbound receiver's token or HMAC secret is blank")
        self.policies = policies
        self.surges = surges
        self._token = token
        self._hmac = hmac_secret
        self._now = now
        self._wall = wall
        self.tolerance = DEFAULT_TOLERANCE  # seconds a signed request stays valid
        self._seen: dict[str, float] = {}  # accepted signature -> when it goes stale
        self._seen_lock = threading.Lock()

    def authorize(self, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]] | None:
        """The check on the headers alone, before the body is read: a valid bearer token,
        or a signature header with a fresh, finite timestamp not seen before."""
        try:
            self._authenticate(headers, None)
        except Rejected as err:
            return err.status, {"error": str(err)}
        return None

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
            elif change.end is not None and self.surges.end_surge(
                change.end, self._now(), policy=change.policy, namespace=change.namespace
            ):
                ended.append({"key": change.end, "policy": change.policy, "target": change.target})
        return 200, {"started": started, "ended": ended}

    def _authenticate(self, headers: Mapping[str, str], body: bytes | None) -> None:
        """Raise :class:`Rejected` unless ``headers`` (and ``body``, when given) carry
        valid credentials; with ``body`` None only what the headers can prove."""
        lower = {k.lower(): v for k, v in headers.items()}
        auth = lower.get("authorization", "")
        if self._token is not None and auth.startswith("Bearer "):
            given = auth.removeprefix("Bearer ").strip().encode()
            if given and hmac.compare_digest(given, self._token.get_secret_value().encode()):
                return
            raise Rejected(401, "the bearer token is not valid")
        if self._hmac is not None and SIGNATURE_HEADER.lower() in lower:
            now = self._wall()
            # The timestamp first (a body signed at a stale or non-finite time is never
            # read), then: not seen before, then the HMAC over the body.
            problem = check_timestamp(headers, now=now, tolerance=self.tolerance)
            if problem is not None:
                raise Rejected(401, f"signature rejected: {problem}")
            signature = lower[SIGNATURE_HEADER.lower()].strip()
            if self._replayed(signature, now):
                raise Rejected(401, "signature rejected: this request was accepted before (replay)")
            if body is None:
                return
            problem = verify_signature(
                self._hmac.get_secret_value(), headers, body, now=now, tolerance=self.tolerance
            )
            if problem is not None:
                raise Rejected(401, f"signature rejected: {problem}")
            if not self._claim(signature, now):  # a copy sent at the same moment
                raise Rejected(401, "signature rejected: this request was accepted before (replay)")
            return
        wanted = " or ".join(
            w for w, on in (("a bearer token", self._token), ("a signature", self._hmac)) if on
        )
        raise Rejected(401, f"authentication required ({wanted})")

    def _replayed(self, signature: str, now: float) -> bool:
        with self._seen_lock:
            for old in [s for s, until in self._seen.items() if until < now]:
                del self._seen[old]  # stale: its timestamp is refused anyway
            return signature in self._seen

    def _claim(self, signature: str, now: float) -> bool:
        """Remember ``signature`` as accepted; False if it already was (atomically)."""
        with self._seen_lock:
            if signature in self._seen:
                return False
            # Twice the tolerance: a timestamp up to `tolerance` in the future stays valid
            # that long after it arrives.
            self._seen[signature] = now + 2 * self.tolerance
            return True

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
            namespace, spec = _find_policy(policies, policy_name, where)
            if target_name not in {t.name for t in spec.targets}:
                raise Rejected(422, f"{where}: policy {spec.name} has no target "
                               f"{target_name[:100]!r}")  # fmt: skip
            key = alert.fingerprint or _fingerprint(alert.labels)
            if alert.status == "resolved":
                changes.append(_Change(None, key, spec.name, target_name, namespace))
                continue
            factor = _number(alert, FACTOR_KEY, where, DEFAULT_FACTOR)
            rules = spec.alert_rules
            if not factor >= 1.0:
                raise Rejected(422, f"{where}: {FACTOR_KEY} must be at least 1")
            factor = min(factor, rules.surge_max_factor)
            duration = _duration(alert, where, rules.surge_max_duration)
            reason = alert.labels.get("alertname", "alert")[:80]
            surge = Surge(key, spec.name, target_name, factor, now, now + duration, reason,
                          dict(spec.event_selector), namespace)  # fmt: skip
            changes.append(_Change(surge, None, spec.name, target_name, namespace))
        return changes


def _find_policy(
    policies: Mapping[str, PolicySpec], label: str, where: str
) -> tuple[str | None, PolicySpec]:
    """The policy an alert's ``headroom_policy`` names, and its namespace. The operator's
    map is keyed ``namespace/name``: a label may give either; a bare name that runs in
    several namespaces is refused (it was surged in whichever came first)."""
    if label in policies:
        ns, _, _ = label.rpartition("/")
        return ns or None, policies[label]
    found = [k for k in policies if k.rpartition("/")[2] == label]
    if not found:
        raise Rejected(422, f"{where}: unknown policy {label[:100]!r}")
    if len(found) > 1:
        spaces = ", ".join(sorted(k.rpartition("/")[0] for k in found))[:200]
        raise Rejected(422, f"{where}: policy {label[:100]!r} runs in several namespaces "
                       f"({spaces}): label {POLICY_LABEL} as NAMESPACE/NAME")  # fmt: skip
    ns, _, _ = found[0].rpartition("/")
    return ns or None, policies[found[0]]


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
    return HookServer(
        {PATH: receiver.handle}, host, port, max_body, authorize={PATH: receiver.authorize}
    )
