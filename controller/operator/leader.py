"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does.

``headroom operator run`` calls :meth:`LeaseElector.acquire` before it starts kopf,
so a standby process watches nothing and acts on nothing; once leader, a
renewal thread keeps the Lease and calls ``on_lost`` when it could not renew
within ``renew_deadline`` (the runtime then stops acting at once, before any
standby can take the Lease at ``lease_duration``).

Expiry is judged on this process's monotonic clock — the time it *observed* the
Lease's record change — never by comparing another machine's ``renewTime`` with
ours, so clock skew between nodes cannot make two leaders.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from headroom.controller.kube import Kube, call, not_found
from headroom.policies.errors import KubernetesError

log = logging.getLogger(__name__)


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseTimings:
    lease_duration: float = 15.0  # a standby takes over this long after the last renewal
    renew_deadline: float = 10.0  # the leader gives up if it cannot renew for this long
    retry_period: float = 2.0  # how often both sides try


class LeaseElector:
    """Acquires and renews Lease ``namespace/name`` for ``identity``."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        timings: LeaseTimings | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timings = timings or LeaseTimings()
        self._monotonic = monotonic
        self._observed: tuple[Any, ...] | None = None  # (holder, renewTime, transitions)
        self._observed_at = 0.0
        self._last_renewal = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- public --------------------------------------------------------------------------------

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Block until this process holds the Lease (True) or ``stop`` is set (False)."""
        waited_for: str | None = None
        while stop is None or not stop.is_set():
            try:
                if self.try_acquire_or_renew():
                    log.info(
                        "Acquired Lease %s/%s identity=%s", self.namespace, self.name, self.identity
                    )
                    return True
            except KubernetesError as err:
                log.warning("Failed to read Lease %s/%s error=%s", self.namespace, self.name, err)
            holder = self._observed[0] if self._observed else None
            if holder != waited_for:
                log.info("Waiting for Lease %s/%s holder=%s", self.namespace, self.name, holder)
                waited_for = holder
            if stop is not None:
                stop.wait(self.timings.retry_period)
            else:
                time.sleep(self.timings.retry_period)
        return False

    def keep(self, on_lost: Callable[[], None]) -> None:
        """Renew in a background thread; call ``on_lost`` once if renewal lapses."""

        def renew() -> None:
            while not self._stop.wait(self.timings.retry_period):
                try:
                    if self.try_acquire_or_renew():
                        continue
                    log.error(
                        "Lost Lease %s/%s to holder=%s", self.namespace, self.name, self.holder
                    )
                    on_lost()
                    return
                except KubernetesError as err:
                    late = self._monotonic() - self._last_renewal
                    log.warning(
                        "Failed to renew Lease %s/%s for=%.1fs error=%s",
                        self.namespace,
                        self.name,
                        late,
                        err,
                    )
                    if late > self.timings.renew_deadline:
                        log.error(
                            "Gave up Lease %s/%s: not renewed for %.1fs",
                            self.namespace,
                            self.name,
                            late,
                        )
                        on_lost()
                        return

        self._thread = threading.Thread(target=renew, name="lease-renewal", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop renewing and hand the Lease back (holder cleared) so a standby starts now."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            lease = self._read()
            if lease is not None and lease["spec"].get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = ""
                lease["spec"]["leaseDurationSeconds"] = 1
                self._replace(lease)
                log.info("Released Lease %s/%s", self.namespace, self.name)
        except KubernetesError as err:
            log.warning("Failed to release Lease %s/%s error=%s", self.namespace, self.name, err)

    @property
    def holder(self) -> str | None:
        return str(self._observed[0]) if self._observed and self._observed[0] else None

    # -- one attempt ---------------------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One round of client-go's tryAcquireOrRenew; False when someone else holds it."""
        now = self._monotonic()
        lease = self._read()
        if lease is None:
            body: dict[str, Any] = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(transitions=0, acquired=_micro_now()),
            }
            try:
                call(
                    lambda: self.kube.coordination.create_namespaced_lease(self.namespace, body),
                    f"create Lease {self.namespace}/{self.name}",
                )
            except KubernetesError as err:
                if getattr(err, "status", None) == 409:
                    return False  # someone created it first
                raise
            self._saw((self.identity, body["spec"]["renewTime"], 0), now)
            self._last_renewal = now
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._saw(record, now)
        duration = float(spec.get("leaseDurationSeconds") or self.timings.lease_duration)
        if holder and holder != self.identity and now < self._observed_at + duration:
            return False  # held, and not expired as far as we have seen
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            acquired = spec.get("acquireTime") or _micro_now()
        else:
            transitions, acquired = transitions + 1, _micro_now()
        lease["spec"] = self._spec(transitions=transitions, acquired=acquired)
        try:
            self._replace(lease)
        except KubernetesError as err:
            if getattr(err, "status", None) == 409:
                return False  # another candidate won this round
            raise
        self._saw((self.identity, lease["spec"]["renewTime"], transitions), now)
        self._last_renewal = now
        return True

    # -- helpers -------------------------------------------------------------------------------

    def _spec(self, *, transitions: int, acquired: str) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.timings.lease_duration),
            "acquireTime": acquired,
            "renewTime": _micro_now(),
            "leaseTransitions": transitions,
        }

    def _saw(self, record: tuple[Any, ...], at: float) -> None:
        self._observed, self._observed_at = record, at

    def _read(self) -> dict[str, Any] | None:
        try:
            lease = call(
                lambda: self.kube.coordination.read_namespaced_lease(self.name, self.namespace),
                f"read Lease {self.namespace}/{self.name}",
                attempts=2,
                max_seconds=self.timings.retry_period,
            )
        except KubernetesError as err:
            if not_found(err):
                return None
            raise
        out: dict[str, Any] = self.kube.api.sanitize_for_serialization(lease)
        return out

    def _replace(self, lease: dict[str, Any]) -> None:
        call(
            lambda: self.kube.coordination.replace_namespaced_lease(
                self.name, self.namespace, lease
            ),
            f"update Lease {self.namespace}/{self.name}",
            attempts=2,
            max_seconds=self.timings.retry_period,
        )
