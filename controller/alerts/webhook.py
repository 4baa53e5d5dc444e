"""The generic JSON webhook sink, HMAC-SHA256 signed, and the check a receiver runs.

Body: ``{"version": "1", "source": "headroom", "policy": ..., "status": "firing" |
"resolved", "alerts": [Alert.to_json(), ...]}``. With a secret, every request carries

- ``X-Headroom-Timestamp``: unix seconds when it was signed;
- ``X-Headroom-Signature``: ``v1=`` + hex HMAC-SHA256(secret, timestamp + "." + body);
- ``X-Headroom-Delivery``: an id unique per delivery (equal across its retries).

A receiver recomputes the signature over the raw body (constant-time compare), rejects
a timestamp older than its tolerance (a replay) and may remember delivery ids to drop
duplicates: :func:`verify_signature` is that check, and ``docs/alerts.md`` shows it in
a few lines. The inbound receiver (``inbound.py``) accepts the same signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import SecretStr

from headroom.controller.alerts.base import Alert, HttpPost, Status, UrlSink

if TYPE_CHECKING:  # alerts/config.py builds this sink (and imports this module)
    from headroom.controller.alerts.config import Secret, SinkConfig

TIMESTAMP_HEADER = "X-Headroom-Timestamp"
SIGNATURE_HEADER = "X-Headroom-Signature"
DELIVERY_HEADER = "X-Headroom-Delivery"
DEFAULT_TOLERANCE = 300.0


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Headroom-Signature`` value for ``body`` signed at ``timestamp``."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify_signature(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> str | None:
    """``None`` if ``body`` is signed by ``secret`` within ``tolerance`` seconds of ``now``,
    else why not (one line, safe to return to the caller: it holds no secret)."""
    problem = check_timestamp(headers, now=now, tolerance=tolerance)
    if problem is not None:
        return problem
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp, signature = lower[TIMESTAMP_HEADER.lower()], lower[SIGNATURE_HEADER.lower()]
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip()):
        return "signature does not match the body"
    return None


def check_timestamp(
    headers: Mapping[str, str], *, now: float | None = None, tolerance: float = DEFAULT_TOLERANCE
) -> str | None:
    """The part of :func:`verify_signature` the headers alone can tell (so a receiver runs
    it before reading a body): both headers present, a finite timestamp within
    ``tolerance`` of ``now``."""
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp = lower.get(TIMESTAMP_HEADER.lower())
    signature = lower.get(SIGNATURE_HEADER.lower())
    if not timestamp or not signature:
        return f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header"
    try:
        signed_at = float(timestamp)
    except ValueError:
        return f"{TIMESTAMP_HEADER} is not unix seconds"
    if not math.isfinite(signed_at):  # "nan" compared as within any tolerance
        return f"{TIMESTAMP_HEADER} is not unix seconds"
    if abs((time.time() if now is None else now) - signed_at) > tolerance:
        return f"{TIMESTAMP_HEADER} is outside the {tolerance:g} s tolerance (replayed?)"
    return None


@dataclass(eq=False)
class WebhookSink(UrlSink):
    """POSTs each group of alerts as one JSON document to ``url``."""

    secret: SecretStr | None = None

    def body(self, alerts: Sequence[Alert]) -> bytes:
        firing = any(a.status is Status.FIRING for a in alerts)
        doc = {
            "version": "1",
            "source": "headroom",
            "policy": alerts[0].policy if alerts else None,
            "status": (Status.FIRING if firing else Status.RESOLVED).value,
            "alerts": [a.to_json() for a in alerts],
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    def send(self, alerts: Sequence[Alert]) -> None:
        body = self.body(alerts)
        # Equal across retries of one delivery (the body is deterministic), so a receiver
        # that got a request whose answer was lost can drop the repeat.
        headers = {DELIVERY_HEADER: hashlib.sha256(body).hexdigest()[:32]}
        if self.secret is not None:
            timestamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(self.secret.get_secret_value(), timestamp, body)
        self.deliver(body, headers)


# -- from the alerts config: the webhook row of alerts/config.py's SINKS


def webhook(
    name: str, config: SinkConfig, secret: Secret, url: str | None, post: HttpPost
) -> WebhookSink:
    assert url is not None  # SinkConfig requires it
    return WebhookSink(name, url, secret(config.secret_from, "secretFrom"), post=post)
