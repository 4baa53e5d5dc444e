"""kopf's wiring for RedisClusters: which events call the reconciler, and how a
"requeue after N s" while converging is logged (at INFO, as what it is).

``operator run`` (``runtime.py``) calls :func:`register` with a kopf registry and the
one :class:`~headroom.controller.operator.rediscluster.RedisClusterReconciler`.
"""

from __future__ import annotations

import logging
from typing import Any

from headroom.controller.operator import resources
from headroom.controller.operator.conditions import route
from headroom.controller.operator.rediscluster import RedisClusterReconciler
from headroom.controller.operator.specs import KIND, PLURAL, InvalidSpec
from headroom.policies.errors import HeadroomError

log = logging.getLogger(__name__)

#: Starts the message of the TemporaryError that only asks kopf to come back (converging).
REQUEUE_MARK = "requeue: "
_TEMPORARY = " failed temporarily: "


class ConvergingLogFilter(logging.Filter):
    """Logs kopf's "Handler ... failed temporarily: requeue: ..." at INFO, as what it is.

    kopf has one way to say "call me again in N s" from an on.create/on.update handler:
    raising ``TemporaryError(delay=N)``, which it logs at ERROR (and posts as a Warning
    Event). A pass that returns "requeue after N s" while a migration converges is not an
    error, so its record becomes ``INFO Requeued Handler '...' after=Ns: Scaling: ...``.
    Real failures (any other TemporaryError, PermanentError, exceptions) keep their level.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR or not isinstance(record.msg, str):
            return True
        handler, sep, rest = record.msg.partition(_TEMPORARY)
        if sep and rest.startswith(REQUEUE_MARK):
            record.msg = f"Requeued {handler} while converging: {rest.removeprefix(REQUEUE_MARK)}"
            record.args = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def quiet_requeues(logger: logging.Logger | None = None) -> None:
    """Install :class:`ConvergingLogFilter` on kopf's per-object logger (once)."""
    logger = logger or logging.getLogger("kopf.objects")
    if not any(isinstance(f, ConvergingLogFilter) for f in logger.filters):
        logger.addFilter(ConvergingLogFilter())


def register(registry: Any, reconciler: RedisClusterReconciler, *, timer: float = 10.0) -> None:
    """Route kopf's resume/create/update/timer/delete for RedisClusters to ``reconciler``."""
    import kopf

    quiet_requeues()

    def count(result: str) -> None:
        if reconciler.metrics is not None:
            reconciler.metrics.record_reconcile(KIND, result)

    def handle(body: Any, **_: Any) -> None:
        try:
            outcome = reconciler.reconcile(body)
        except InvalidSpec as err:
            count("invalid")
            raise kopf.PermanentError(str(err)) from err
        except HeadroomError as err:
            count("failed")
            raise kopf.TemporaryError(str(err), delay=5.0) from err
        count("done" if outcome.requeue_after is None else "requeued")
        if outcome.requeue_after is not None:
            raise kopf.TemporaryError(
                f"{REQUEUE_MARK}{outcome.phase}: {outcome.message}", delay=outcome.requeue_after
            )

    def drift(body: Any, **_: Any) -> None:
        status, meta = body.get("status") or {}, body["metadata"]
        if status.get("phase") == "Invalid" and status.get("observedGeneration") == meta.get(
            "generation"
        ):
            return  # not retried until the spec changes
        try:
            reconciler.reconcile(body)
        except InvalidSpec:
            return  # reported in the status by reconcile()
        except HeadroomError as err:  # the next tick tries again
            log.warning("Timer pass failed RedisCluster %s error=%s", body["metadata"]["name"], err)

    def gone(body: Any, **_: Any) -> None:
        meta = body["metadata"]
        reconciler.forget(meta["namespace"], meta["name"], meta["uid"])

    def pod_event(event: Any, body: Any, **_: Any) -> None:
        meta = body.get("metadata") or {}
        cluster = (meta.get("labels") or {}).get(resources.CLUSTER_LABEL)
        if not cluster or event.get("type") is None:
            return  # the initial listing, not a change
        conditions = (body.get("status") or {}).get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        if event.get("type") == "DELETED" or meta.get("deletionTimestamp") or not ready:
            reconciler.pod_lost(meta.get("namespace", ""), cluster)

    route(registry, PLURAL, handle=handle, timer=drift, gone=gone, interval=timer)
    kopf.on.event(
        "", "v1", "pods", labels={resources.CLUSTER_LABEL: kopf.PRESENT}, registry=registry
    )(pod_event)


__all__ = ["REQUEUE_MARK", "ConvergingLogFilter", "quiet_requeues", "register"]
