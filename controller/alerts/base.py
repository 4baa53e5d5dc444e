"""The alert value every sink sends, the one :class:`AlertSink` protocol, and the HTTP seam.

The evaluator (:mod:`headroom.controller.alerts.rules`) produces :class:`Alert` values;
the notifier (:mod:`headroom.controller.alerts.notifier`) hands groups of them to sinks
(one file each: ``webhook.py``, ``slack.py``, ``pagerduty.py``, ``alertmanager.py``).
A sink receives its HTTP client (:data:`HttpPost`), so tests can pass a recorder, and
the real thing posts with :func:`urllib_post`.

Secrets (Slack URLs, routing keys, HMAC keys, bearer tokens) live only inside sinks as
:class:`pydantic.SecretStr`; a sink is named by :attr:`AlertSink.name` in logs, metrics,
errors and ``--json`` output, never by its URL.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol

from headroom.policies.errors import AlertDeliveryError


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class Status(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    """One alert about one policy (and usually one target), firing or resolved.

    ``key`` is its stable identity (``policy/target/name``): the same condition on the
    same target always has the same key, so receivers can de-duplicate and link to it;
    :attr:`fingerprint` is a short hash of it (PagerDuty's ``dedup_key``).
    """

    name: str  # an AlertName value, or "test"
    policy: str
    target: str | None
    severity: Severity
    summary: str  # one line for a human
    since: float  # unix seconds the condition began
    at: float  # unix seconds of the pass that reported it
    status: Status = Status.FIRING
    event: str | None = None  # the demand event concerned, if any
    numbers: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    link: str | None = None  # where a human reads more (the operator's externalUrl)

    def __post_init__(self) -> None:
        object.__setattr__(self, "numbers", MappingProxyType(dict(self.numbers)))

    @property
    def key(self) -> str:
        return f"{self.policy}/{self.target or '-'}/{self.name}"

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()[:16]

    def resolved(self, at: float) -> Alert:
        """This alert, cleared at ``at``."""
        return Alert(
            self.name, self.policy, self.target, self.severity,
            f"Resolved, the condition cleared (last seen: {self.summary})", self.since, at,
            Status.RESOLVED,
            self.event, self.numbers, self.link,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """The JSON form the generic webhook sends and ``--json`` prints."""
        return {
            "id": self.fingerprint,
            "key": self.key,
            "name": self.name,
            "status": self.status.value,
            "severity": self.severity.value,
            "policy": self.policy,
            "target": self.target,
            "event": self.event,
            "summary": self.summary,
            "numbers": dict(self.numbers),
            "since": iso(self.since),
            "at": iso(self.at),
            "link": self.link,
        }


def iso(epoch: float) -> str:
    """RFC 3339 in UTC with milliseconds (what Alertmanager and PagerDuty accept)."""
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


class AlertSink(Protocol):
    """Somewhere alerts go. ``send`` delivers a group (one policy's alerts) or raises
    :class:`AlertDeliveryError`; the notifier retries it. ``resend_interval`` (seconds)
    is set by sinks that forget firing alerts unless told again (Alertmanager)."""

    name: str
    resend_interval: float | None

    def send(self, alerts: Sequence[Alert]) -> None: ...


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes


HttpPost = Callable[[str, bytes, Mapping[str, str], float], HttpResponse]
"""``post(url, body, headers, timeout)``: one HTTP POST; raises ``OSError`` when the
connection fails. Any status is returned (the sink decides what counts as success)."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as what it is (a 3xx), never followed: urllib would resend
    the request's headers, a bearer token among them, to wherever ``Location`` points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def urllib_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> HttpResponse:
    """The real :data:`HttpPost`, on the standard library; a 3xx is returned, not followed
    (so a sink that redirects is a failed delivery, and its credentials stay here)."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as resp:
            return HttpResponse(int(resp.status), resp.read(65536))
    except urllib.error.HTTPError as err:
        return HttpResponse(int(err.code), err.read(65536) if err.fp else b"")


@dataclass(eq=False)
class UrlSink:
    """What a sink that POSTs to a plain URL holds: its name (in logs, metrics and errors,
    never its URL), the URL and the HTTP client, passed in (a test passes a recorder)."""

    name: str
    url: str = field(repr=False)
    _: KW_ONLY
    post: HttpPost = field(default=urllib_post, repr=False)
    resend_interval: float | None = field(default=None, init=False)

    def deliver(self, body: bytes, headers: Mapping[str, str], path: str = "") -> None:
        """POST ``body`` to the URL (plus ``path``); see :func:`post_checked`."""
        url = self.url.rstrip("/") + path if path else self.url
        post_checked(self.post, self.name, url, body, headers)


def post_checked(
    post: HttpPost,
    sink: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    ok: Callable[[int], bool] = lambda status: 200 <= status < 300,
    timeout: float = 10.0,
) -> HttpResponse:
    """POST and turn a failure into an :class:`AlertDeliveryError` naming only ``sink``.

    The URL (which may be a secret, as Slack's is) and the exception text (which may
    repeat it) never reach the message.
    """
    try:
        response = post(url, body, {"Content-Type": "application/json", **headers}, timeout)
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        detail = type(reason).__name__
        if isinstance(reason, OSError) and reason.strerror:
            detail = reason.strerror
        raise AlertDeliveryError(f"alert sink {sink}: no answer ({detail})") from None
    if not ok(response.status):
        retryable = response.status >= 500 or response.status in (408, 429)
        raise AlertDeliveryError(f"alert sink {sink}: HTTP {response.status}", retryable=retryable)
    return response
