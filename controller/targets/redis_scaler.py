"""Scale target for a Redis Cluster that a :class:`ClusterScaler` grows and shrinks.

Used by ``headroom demo`` (over the local provisioner) and by the operator's
RedisCluster controller (over the StatefulSet provisioner): the control loop and
the reconciler see only :class:`headroom.controller.targets.base.ScaleTarget`
plus the few extras below (progress, replicas, recheck). Resharding takes
seconds to minutes, so :meth:`RedisScalerTarget.scale` only records the wish and
wakes a worker thread; :meth:`status` reports progress while it converges. A
failed attempt is retried after ``retry_after`` seconds, because the loop will
not ask again for a size it already asked for.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from headroom.controller.redis.reports import ClusterStatus, ReshardProgress
from headroom.controller.redis.scaler import ClusterScaler
from headroom.controller.targets.base import ScaleStatus
from headroom.controller.world import World, kind_error
from headroom.policies.errors import HeadroomError, InputError
from headroom.policies.policy import Target

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Locked(Generic[T]):
    """A read-only attribute that reads ``private`` under its owner's ``_cond``."""

    def __init__(self, private: str) -> None:
        self.private = private

    def __get__(self, owner: RedisScalerTarget, kind: object = None) -> T:
        with owner._cond:
            value: T = getattr(owner, self.private)
            return value


class RedisScalerTarget:
    """A Redis Cluster's masters as a :class:`ScaleTarget`; the work runs in one worker thread."""

    def __init__(
        self,
        scaler: ClusterScaler,
        *,
        name: str = "redis/local",
        retry_after: float = 5.0,
        on_moved: Callable[[int, int], None] | None = None,
    ) -> None:
        """``on_moved(slots, keys)`` hears what each progress report adds (metrics)."""
        self.scaler = scaler
        self._on_moved = on_moved
        self._name = name
        self.retry_after = retry_after
        self._cond = threading.Condition()
        self._desired: int | None = None
        self._converged: int | None = None  # the size the last successful run reached
        self._stale = False  # the run under way must be followed by another
        self._running = False
        self._closing = False
        self._phase = ""
        self._progress: ReshardProgress | None = None
        self._error: str | None = None
        self._ready = 0
        self._worker: threading.Thread | None = None
        scaler.on_phase = self._on_phase

    @property
    def name(self) -> str:
        return self._name

    # What the worker thread writes, read under its lock; none of them reads a node.
    progress = _Locked[ReshardProgress | None]("_progress")  # of the run under way, or None
    last_error = _Locked[str | None]("_error")
    desired = _Locked[int | None]("_desired")  # the size last asked for (None: never asked)
    running = _Locked[bool]("_running")  # a scaler run is under way right now
    phase = _Locked[str]("_phase")  # what the run under way is doing ("" between runs)

    @property
    def pending(self) -> bool:
        """A run is under way or still owed for the size asked for; reads no node."""
        with self._cond:
            return self._running or (self._desired is not None and self._desired != self._converged)

    def set_replicas(self, replicas: int) -> None:
        """Replicas per master for the next run; a change makes the next run happen."""
        if replicas < 0:
            raise InputError(f"{self._name}: replicas per master must be 0 or more")
        with self._cond:
            if replicas != self.scaler.replicas_per_master:
                self.scaler.replicas_per_master = replicas
                self._converged = None
                self._stale = self._running  # the run under way started with the old count
                self._cond.notify_all()

    def recheck(self) -> None:
        """Run the scaler again even if the size was reached (the world drifted: a node
        was replaced, a slot is open); a no-op while a run is under way."""
        with self._cond:
            if not self._running:
                self._converged = None
                self._cond.notify_all()

    def scale(self, units: int, reason: str) -> None:
        if units < 1:
            raise InputError(f"{self._name}: masters must be at least 1, got {units}")
        with self._cond:
            if self._closing:
                raise HeadroomError(f"{self._name}: target is closed")
            if units != self._desired:
                log.info(
                    "Asked to scale target=%s masters=%s->%d reason=%s",
                    self._name,
                    self._desired,
                    units,
                    reason,
                )
            self._desired = units
            if self._error is not None:
                self._converged = None  # a new ask retries a failed run at once
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._work, name=f"scale-{self._name}", daemon=True
                )
                self._worker.start()
            self._cond.notify_all()

    def status(self) -> ScaleStatus:
        try:
            ready = self.scaler.status().masters_serving
        except HeadroomError as err:
            log.warning("Failed to read target=%s error=%s", self._name, err)
            ready = self._ready
        with self._cond:
            self._ready = ready
            desired = self._desired if self._desired is not None else ready
            busy = self._running or (self._desired is not None and self._desired != self._converged)
            return ScaleStatus(desired=desired, ready=ready, busy=busy, detail=self._detail(busy))

    def cluster_status(self) -> ClusterStatus:
        """The full picture (nodes, slots, keys) for dashboards."""
        return self.scaler.status()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no run is under way or pending; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: (
                    not self._running
                    and (self._desired is None or self._desired == self._converged)
                ),
                timeout,
            )

    def close(self, *, wait: bool = True) -> None:
        """Stop the worker once the run under way has finished (``wait=False``: do not wait
        for it; the operator's next leader finishes an interrupted run)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            worker = self._worker
        if worker is not None and wait:
            worker.join()
        if wait or worker is None or not worker.is_alive():
            self.scaler.close()

    # -- worker --------------------------------------------------------------------------------

    def _detail(self, busy: bool) -> str:
        if busy and self._progress is not None and self._progress.slots_total:
            p = self._progress
            return f"migrating {p.slots_done}/{p.slots_total} slots"
        if busy and self._phase:
            return self._phase
        if self._error is not None:
            return f"failed: {self._error}"
        return ""

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: (
                        self._closing
                        or (self._desired is not None and self._desired != self._converged)
                    )
                )
                if self._closing:
                    return
                assert self._desired is not None
                target = self._desired
                self._running, self._progress, self._phase = True, None, ""
                self._stale = False
            try:
                self.scaler.scale_masters(target, progress=self._on_progress)
            except HeadroomError as err:
                log.warning(
                    "Failed to scale target=%s masters=%d error=%s", self._name, target, err
                )
                with self._cond:
                    self._running, self._error = False, str(err)
                    self._cond.notify_all()
                    # Retry later unless a new ask or close() wakes us first.
                    self._cond.wait(self.retry_after)
                continue
            except Exception as err:
                log.exception("Scaling crashed target=%s masters=%d", self._name, target)
                with self._cond:
                    self._running, self._error = False, f"internal error: {err}"
                    self._cond.notify_all()
                    self._cond.wait(self.retry_after)
                continue
            with self._cond:
                self._running, self._error = False, None
                self._converged = None if self._stale else target
                self._progress, self._phase = None, ""
                self._cond.notify_all()

    def _on_progress(self, progress: ReshardProgress) -> None:
        with self._cond:
            before = self._progress  # None at the start of a run: counted from zero
            self._progress = progress
        if self._on_moved is not None:
            slots = progress.slots_done - (before.slots_done if before else 0)
            keys = progress.keys_moved - (before.keys_moved if before else 0)
            if slots < 0 or keys < 0:  # a new migration within the run
                slots, keys = progress.slots_done, progress.keys_moved
            if slots or keys:
                self._on_moved(slots, keys)

    def _on_phase(self, text: str) -> None:
        with self._cond:
            self._phase = text


# -- from a policy: the LocalRedisCluster row of targets/registry.py -------------------------


def local_cluster(target: Target, world: World) -> RedisScalerTarget:
    if world.local_scaler is None:
        raise kind_error(
            target, f"{target.kind} runs in the embedded mode only (headroom demo / local)"
        )
    return RedisScalerTarget(world.local_scaler(target), name=target.name)
