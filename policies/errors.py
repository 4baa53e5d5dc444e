"""Headroom's exception hierarchy: every error the project raises on purpose.

Third-party exceptions (redis, kubernetes, prometheus, pydantic, yaml) are
translated into these at one boundary with ``raise ... from err``, so callers
only ever catch Headroom types. ``str(err)`` of an :class:`InputError` is a
single line that names what is wrong and where, fit for a user's terminal.

    HeadroomError
    ├── InputError                  bad user input: nothing was applied
    │   ├── CalendarError           a calendar file or DemandEvent
    │   ├── PolicyError             a policy file or CapacityPolicy spec
    │   ├── TraceError              a history / trace CSV
    │   └── AlertConfigError        the alerts config (sinks, secrets) or an inbound alert
    ├── SourceUnavailable           a metric source is down, slow or stale
    ├── ClusterError                a Redis Cluster operation failed
    │   ├── ClusterUnreachable      seed or node does not answer
    │   ├── NotACluster             the server is not in cluster mode
    │   ├── UnknownNode             a node id that is not in the cluster
    │   ├── UnsafeOperation         refused: it could lose data (e.g. drain the last master)
    │   └── MigrationError          a slot migration stopped; the cluster is repairable
    ├── ProvisioningError           starting or stopping a node failed
    ├── AlertDeliveryError          an alert sink refused or did not answer
    └── KubernetesError             the Kubernetes API refused or failed
        └── ConflictError           409 after retries
"""

from __future__ import annotations


class HeadroomError(Exception):
    """Root of every error Headroom raises on purpose."""


class InputError(HeadroomError):
    """User input is invalid; the message is one line naming the file and field."""


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


class ClusterError(HeadroomError):
    """A Redis Cluster operation failed."""


class ClusterUnreachable(ClusterError):
    """The seed or a node of the cluster does not answer."""


class NotACluster(ClusterError):
    """The server answers but is not running in cluster mode."""


class UnknownNode(ClusterError):
    """A node id that the cluster does not know."""


class UnsafeOperation(ClusterError):
    """Refused because it could lose data or leave slots uncovered."""


class MigrationError(ClusterError):
    """A slot migration stopped part-way; ``headroom redis fix`` repairs the cluster."""


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
