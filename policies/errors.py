"""Headroom's exception hierarchy: every error the project raises on purpose.

Third-party exceptions (redis, kubernetes, prometheus, pydantic, yaml) are
translated into these at one boundary with ``raise ... from err``, so callers
only ever catch Headroom types. ``str(err)`` of an :class:`InputError` is a
single line that names what is wrong and where, fit for a user's terminal.

Every validation error says one of a few things, in one wording, whichever parser
(calendar YAML/ICS, policy, trace CSV, CLI option) found it; the words live here
(:data:`REQUIRED`, :data:`UNKNOWN_FIELD`, :func:`must_be`, :func:`field_error`) and
``headroom.policies.validation`` maps pydantic's errors onto them:

    cal.yaml: event "Sale": colour: is not a known field          unknown field
    cal.yaml: event "Sale": end: is required                      missing field
    p.yaml: targets[0:cart].maxUnits: must be a whole number, not 'ten'   wrong type
    p.yaml: targets[0:cart].capacityPerUnit: must be > 0, not 0   out of range

An :class:`InputError` message is made safe for a terminal when it is raised: one
line, printable characters only, and input quoted only as a short excerpt.

    HeadroomError
    ├── InputError                  bad user input: nothing was applied
    │   ├── CalendarError           a calendar file or DemandEvent
    │   ├── PolicyError             a policy file or CapacityPolicy spec
    │   ├── TraceError              a history / trace CSV
    │   └── AlertConfigError        the alerts config (sinks, secrets) or an inbound alert
    ├── SourceUnavailable           a metric source is down, slow or stale
    ├── ClusterError                a Redis Cluster operation failed (any other redis-py error)
    │   ├── ClusterUnreachable      seed or node does not answer (connection lost or refused)
    │   │   ├── NodeTimeout         a node did not answer in time
    │   │   └── AuthRefused         a node refused our credentials at connect time
    │   ├── CommandRefused          a node answered a command with an error reply
    │   ├── NotACluster             the server is not in cluster mode
    │   ├── UnknownNode             a node id that is not in the cluster
    │   ├── UnsafeOperation         refused: it could lose data (e.g. drain the last master)
    │   ├── MigrationError          a slot migration stopped; the cluster is repairable
    │   └── SlotsLost               a master with slots is gone and no replica can take over
    ├── ProvisioningError           starting or stopping a node failed
    ├── AlertDeliveryError          an alert sink refused or did not answer
    └── KubernetesError             the Kubernetes API refused or failed
        └── ConflictError           409 after retries
"""

from __future__ import annotations

from typing import Any

REQUIRED = "is required"
UNKNOWN_FIELD = "is not a known field"
EXCERPT_CHARS = 40  # input quoted in a message is cut to this many characters
MESSAGE_CHARS = 300  # and a whole message to this many


def printable(text: str) -> str:
    """``text`` with every unprintable character (control bytes, escapes, bidi
    overrides, newlines) written as a Python escape, so a terminal shows it as is."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """A short, printable quotation of an input value (``'abc'``, ``-3``, ``[1, 2]``)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = printable(repr(value) if isinstance(value, str) else str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def must_be(expected: str, value: Any) -> str:
    """The wording of a wrong type or an out-of-range value: ``must be > 0, not -3``."""
    return f"must be {expected}, not {excerpt(value)}"


def field_error(where: str, field: str, problem: str) -> str:
    """``where: field: problem`` -- the one shape of a validation message."""
    return f"{where}: {field}: {problem}"


def one_line(message: str) -> str:
    """A message fit for one terminal line: printable, single line, bounded."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    text = printable(" ".join(lines)) or "invalid input"
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


class HeadroomError(Exception):
    """Root of every error Headroom raises on purpose."""


class InputError(HeadroomError):
    """User input is invalid; the message is one line naming the file and field
    (made printable and bounded here, so no parser can leak raw input)."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class CalendarError(InputError):
    """A calendar (YAML, ICS or DemandEvent) is invalid."""


class PolicyError(InputError):
    """A capacity policy is invalid."""


class TraceError(InputError):
    """A history or trace CSV is invalid."""


class AlertConfigError(InputError):
    """The alerts config (sinks, secret references) or an inbound alert payload is invalid."""


class SourceUnavailable(HeadroomError):
    """A metric source could not answer; distinct from a source answering zero."""

    reason = "SourceUnavailable"  # the MetricsUnavailable condition's reason


class MetricsGap(SourceUnavailable):
    """The source answers, but its newest samples are a gap (a counter reset, a restarted or
    missed node, stalled sampling): no fresh value now, so nothing may be decided from it."""

    reason = "MetricsGap"


class ClusterError(HeadroomError):
    """A Redis Cluster operation failed."""


class ClusterUnreachable(ClusterError):
    """The seed or a node of the cluster does not answer."""


class NodeTimeout(ClusterUnreachable):
    """A node did not answer a command in time."""


class AuthRefused(ClusterUnreachable):
    """A node refused the connection's credentials (wrong or missing password or ACL user)."""


class CommandRefused(ClusterError):
    """A node answered with an error reply (``ERR ...``, ``BUSYKEY ...``, ``NOPERM ...``);
    ``str()`` is the reply."""


class NotACluster(ClusterError):
    """The server answers but is not running in cluster mode."""


class UnknownNode(ClusterError):
    """A node id that the cluster does not know."""


class UnsafeOperation(ClusterError):
    """Refused because it could lose data or leave slots uncovered."""


class MigrationError(ClusterError):
    """A slot migration stopped part-way; ``headroom redis fix`` repairs the cluster."""


class SlotsLost(ClusterError):
    """A master that owned slots is gone with no replica to take over: its keys are lost
    unless its own volume brings it back; nothing is handed to an empty node meanwhile."""


class ProvisioningError(HeadroomError):
    """Starting, configuring or stopping a node failed."""


class AlertDeliveryError(HeadroomError):
    """An alert sink refused or did not answer; the message never holds a URL or secret.

    ``retryable`` is False when trying again cannot help (the sink rejected the request
    as invalid, 4xx other than 429).
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class KubernetesError(HeadroomError):
    """The Kubernetes API refused or failed a request."""


class ConflictError(KubernetesError):
    """A write kept conflicting (409) after its retries."""
