"""The CapacityPolicy controller: the control loop on the cluster, one policy at a time.

One level-triggered :meth:`CapacityPolicyReconciler.reconcile` per policy and pass:
read the spec, the DemandEvents that select the policy and the driver state kept in
``status.driver``; run one pass of the same :class:`~headroom.controller.loop.ControlLoop`
the demo runs (history → forecast → decide → act through the policy's targets); write
the status once — forecast summary, the planned timeline ahead with reasons, last
actions, the driver state, conditions — and post every action as a Kubernetes Event.

The state that matters survives an operator restart because it lives in the status
(budget used, last scale-out/in per target); the fitted model does not need to (a new
leader refits on its first pass). A pass applies what the plan says for *now*: after an
outage nothing is replayed, nothing missed is run late.

A policy's runtime is built by :func:`~headroom.controller.assembly.build_runtime`, as
the demo's and ``headroom plan``'s are. Pieces can be passed in (``targets_for``,
``history_for``, ``clock``), so the reconciler runs unchanged against a real cluster and
in tests with a scaled clock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from headroom.controller import assembly
from headroom.controller.alerts.config import AlertsConfig, build_notifier
from headroom.controller.alerts.notifier import AlertNotifier, AlertState
from headroom.controller.clock import Clock, RealClock
from headroom.controller.demand_events import POLICIES, list_demand_events
from headroom.controller.kube import Kube
from headroom.controller.loop import Condition, ControlLoop, HistoryProvider, LoopEvent, PassReport
from headroom.controller.operator.conditions import (
    Reconciler,
    StatusWriter,
    condition,
    object_key,
    observed,
    route,
)
from headroom.controller.operator.policy_status import export_pass, pass_status
from headroom.controller.operator.rediscluster_auth import cluster_endpoint
from headroom.controller.signals.access import UNRESTRICTED, SourceAccess
from headroom.controller.targets.base import ScaleTarget
from headroom.policies.calendar import Calendar
from headroom.policies.driver import DriverState, SeriesPast
from headroom.policies.errors import HeadroomError, PolicyError
from headroom.policies.forecast.base import Forecaster
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.resources import (
    driver_state_from_status,
    policy_from_resource,
)
from headroom.policies.series import Series

log = logging.getLogger(__name__)

PLURAL = POLICIES
KIND = "CapacityPolicy"
EVENTS_TTL = 2.0  # seconds one DemandEvent list serves the policies of a namespace

TargetsFor = Callable[[Kube, str, Target], ScaleTarget]
HistoryFor = Callable[[PolicySpec, str], HistoryProvider]


class InvalidPolicy(PolicyError):
    """A CapacityPolicy the controller refuses; one line naming the field."""


@dataclass
class _Runtime:
    generation: int
    runtime: assembly.Runtime
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def loop(self) -> ControlLoop:
        return self.runtime.loop

    @property
    def notifier(self) -> AlertNotifier | None:
        """The policy's alert hooks (None: it has none)."""
        return self.runtime.notifier

    def close(self) -> None:
        self.runtime.close(timeout=2.0)


@dataclass(frozen=True)
class PolicyOutcome:
    requeue_after: float
    report: PassReport | None = None


@dataclass(eq=False)
class CapacityPolicyReconciler(Reconciler):
    """Reconciles ``headroom.dev/v1alpha1`` CapacityPolicies.

    ``alerts``: the operator-wide alert sinks and delivery settings (a policy's
    ``spec.alerts`` name them or give a URL). ``history_for``: a policy's demand history
    (default: its own metrics source, as :func:`assembly.build_runtime` builds it);
    ``forecaster``: a policy's forecaster (default: the assembly's); ``access``: the files
    and addresses a policy's sources may use (a refused one is an invalid spec)."""

    _: KW_ONLY
    targets_for: TargetsFor = assembly.targets_for
    history_for: HistoryFor | None = None
    clock: Clock = field(default_factory=RealClock)
    forecaster: Callable[[PolicySpec], Forecaster] | None = None
    interval: float = 60.0
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    access: SourceAccess = UNRESTRICTED

    def __post_init__(self) -> None:
        self._write = StatusWriter(self.kube, PLURAL, KIND)
        self._runtimes: dict[str, _Runtime] = {}
        self._bodies: dict[str, Mapping[str, Any]] = {}  # the latest body of each policy
        self._events_cache: dict[str, tuple[float, Calendar]] = {}
        self._lock = threading.Lock()

    def reconcile(self, body: Mapping[str, Any]) -> PolicyOutcome:
        ns, name, uid, generation, status = observed(body)
        try:
            spec = policy_from_resource(body)
        except PolicyError as err:
            self._invalid(body, status, generation, str(err))
            raise InvalidPolicy(str(err)) from err
        if self.dry_run and not spec.dry_run:
            spec = spec.model_copy(update={"dry_run": True})
        if spec.paused:
            self._write(ns, name, status, generation, {}, [
                Condition("Ready", "False", "Paused", "spec.paused is true: nothing is done"),
            ])  # fmt: skip
            return PolicyOutcome(self.interval)
        try:
            runtime = self._runtime(ns, uid, generation, spec, status)
        except PolicyError as err:  # a source or target it may not have (a refused file)
            self._invalid(body, status, generation, str(err))
            raise InvalidPolicy(str(err)) from err
        with self._lock:
            self._bodies[uid] = body
            known = list(self._bodies.values())
        if runtime.loop.driver.fit_stale(self.clock.now()) and len(known) > 1:
            # This policy's model is due: refit every known policy's due model in one
            # batch now, so the other policies' passes find theirs fresh.
            self.prefit(known)
        with runtime.lock:
            report = runtime.loop.reconcile()
            self._write_report(
                body, spec, runtime.loop, runtime.notifier, report, status, generation
            )
        return PolicyOutcome(self.interval, report)

    def reconcile_all(self, bodies: Sequence[Mapping[str, Any]]) -> list[PolicyOutcome | None]:
        """One pass over many policies: the models due for a refit are fitted together
        (``HeadroomForecaster.fit_many``), then each policy reconciles as alone. A policy
        that fails gets ``None`` (its status says why) and does not stop the others."""
        self.prefit(bodies)
        out: list[PolicyOutcome | None] = []
        for body in bodies:
            try:
                out.append(self.reconcile(body))
            except HeadroomError as err:
                log.warning("Pass failed CapacityPolicy %s error=%s", body["metadata"]["name"], err)
                out.append(None)
        return out

    def prefit(self, bodies: Sequence[Mapping[str, Any]]) -> int:
        """Fit, in batches, every policy's model that its next pass would refit; returns
        how many were fitted."""
        now = self.clock.now()
        calendars: dict[str, Calendar] = {}
        due: list[tuple[Any, Any, Calendar, Series]] = []  # driver, past, events, history
        for body in bodies:
            try:
                spec = policy_from_resource(body)
            except PolicyError:
                continue  # reconcile() reports it
            if spec.paused:
                continue
            ns, _, uid, generation, status = observed(body)
            try:
                runtime = self._runtime(ns, uid, generation, spec, status)
                if ns not in calendars:
                    calendars[ns] = self._calendar(ns)
                history = runtime.loop.history.history(now).before(now)
            except HeadroomError:
                continue  # the pass itself will hold and say so
            driver = runtime.loop.driver
            past = SeriesPast(history)
            events = driver.refit_due(now, past, calendars[ns])
            if events is not None and isinstance(driver.forecaster, HeadroomForecaster):
                due.append((driver, past, events, history))
        groups: dict[str, list[tuple[Any, Any, Calendar, Series]]] = {}
        for item in due:
            groups.setdefault(item[0].policy.forecast.model_dump_json(), []).append(item)
        for items in groups.values():
            models = HeadroomForecaster.fit_many(
                [h for _, _, _, h in items],
                [e for _, _, e, _ in items],
                items[0][0].policy.forecast,
            )
            for (driver, past, events, _), model in zip(items, models, strict=True):
                driver.adopt(model, now, events, past)
        return len(due)

    def known_specs(self) -> dict[str, PolicySpec]:
        """The policies this operator runs, by ``namespace/name`` (the inbound alert
        receiver's map: with --all-namespaces two namespaces may hold the same name)."""
        with self._lock:
            return {
                f"{self._bodies[uid]['metadata']['namespace']}/{r.loop.spec.name}": r.loop.spec
                for uid, r in self._runtimes.items()
                if uid in self._bodies
            }

    def namespace_of(self, policy: str) -> str | None:
        with self._lock:
            bodies = list(self._bodies.values())
        for body in bodies:
            meta = body["metadata"]
            if meta.get("name") == policy:
                return str(meta["namespace"])
        return None

    def namespaces(self) -> list[str]:
        with self._lock:
            return sorted({str(b["metadata"]["namespace"]) for b in self._bodies.values()})

    def forget(self, uid: str) -> None:
        with self._lock:
            runtime = self._runtimes.pop(uid, None)
            self._bodies.pop(uid, None)
        if runtime is not None:
            runtime.close()

    # -- building the loop ---------------------------------------------------------------------

    def _runtime(
        self, ns: str, uid: str, generation: int, spec: PolicySpec, status: Mapping[str, Any]
    ) -> _Runtime:
        with self._lock:
            runtime = self._runtimes.get(uid)
        if runtime is not None and runtime.generation == generation:
            return runtime
        # A new or changed spec: a new loop that carries the driver state on; the old one's
        # source stops sampling and its notifier hands its alert state on.
        saved_alerts = status.get("alerts")
        if runtime is not None:
            if runtime.notifier is not None:
                saved_alerts = runtime.notifier.state()
            runtime.close()
        state = (
            runtime.loop.state
            if runtime is not None
            else driver_state_from_status(status.get("driver"))[0]
        )
        notifier = None
        if spec.alerts:
            notifier = build_notifier(
                spec, self.alerts, metrics=self.metrics, state=AlertState.from_json(saved_alerts)
            )
        try:
            built = self._build(ns, spec, state, notifier)
        except BaseException:
            if notifier is not None:
                notifier.close(timeout=0.0)
            raise
        runtime = _Runtime(generation, built)
        with self._lock:
            self._runtimes[uid] = runtime
        return runtime

    def _build(
        self,
        ns: str,
        spec: PolicySpec,
        state: DriverState | None,
        notifier: AlertNotifier | None,
    ) -> assembly.Runtime:
        return assembly.build_runtime(
            spec,
            assembly.World(
                kube=self.kube,
                access=self.access,
                redis_cluster=lambda cluster: cluster_endpoint(self.kube, ns, cluster),
            ),
            calendar=lambda: self._calendar(ns),
            clock=self.clock,
            notifier=notifier,
            state=state,
            targets=lambda target: self.targets_for(self.kube, ns, target),
            history=self.history_for(spec, ns) if self.history_for is not None else None,
            forecaster=self.forecaster,
        )

    def _calendar(self, ns: str) -> Calendar:
        """The namespace's DemandEvents; one list serves every policy of a pass (2 s)."""
        now = self.clock.now()
        cached = self._events_cache.get(ns)
        if cached is not None and 0 <= now - cached[0] < EVENTS_TTL:
            return cached[1]
        calendar = self._list_events(ns)
        self._events_cache[ns] = (now, calendar)
        return calendar

    def _list_events(self, ns: str) -> Calendar:
        return list_demand_events(self.kube, ns).calendar

    # -- writing what happened -----------------------------------------------------------------

    def _write_report(
        self,
        body: Mapping[str, Any],
        spec: PolicySpec,
        loop: ControlLoop,
        notifier: AlertNotifier | None,
        report: PassReport,
        status: Mapping[str, Any],
        generation: int,
    ) -> None:
        ns, name = object_key(body)
        for event in report.events:
            self._post(body, event)
        fields, conds = pass_status(spec, loop, notifier, report, status)
        self._write(ns, name, status, generation, fields, conds)
        if self.metrics is not None:
            export_pass(spec, report, self.metrics)

    def _post(self, body: Mapping[str, Any], event: LoopEvent) -> None:
        if event.kind == "Scaled":
            message = f"{event.target} {event.from_units}->{event.to_units}: {event.reason}"
            self.record(body, "Normal", "Scaled", message)
        elif event.kind in ("ScaleFailed", "SourceUnavailable"):
            self.record(body, "Warning", event.kind, f"{event.target}: {event.reason}")
        elif event.kind == "Capped":
            self.record(body, "Warning", "CapacityCapped", f"{event.target}: {event.reason}")

    def _invalid(
        self, body: Mapping[str, Any], status: Mapping[str, Any], generation: int, message: str
    ) -> None:
        ns, name = object_key(body)
        ready = condition(status, "Ready") or {}
        first = status.get("observedGeneration") != generation or ready.get("reason") != (
            "InvalidSpec"
        )
        self._write(ns, name, status, generation, {}, [
            Condition("Ready", "False", "InvalidSpec", message),
        ])  # fmt: skip
        if first:
            self.record(body, "Warning", "InvalidSpec", message)
        log.warning("Rejected CapacityPolicy %s/%s error=%s", ns, name, message)


def register(
    registry: Any, reconciler: CapacityPolicyReconciler, *, interval: float = 60.0
) -> None:
    """kopf: resume/create/update and a timer at the pass interval all run ``reconcile``."""
    import kopf

    def handle(body: Any, **_: Any) -> None:
        try:
            reconciler.reconcile(body)
        except InvalidPolicy as err:
            raise kopf.PermanentError(str(err)) from err
        except HeadroomError as err:
            raise kopf.TemporaryError(str(err), delay=10.0) from err

    def tick(body: Any, **_: Any) -> None:
        st, meta = body.get("status") or {}, body["metadata"]
        invalid = (condition(st, "Ready") or {}).get("reason") == "InvalidSpec"
        if invalid and st.get("observedGeneration") == meta.get("generation"):
            return
        try:
            reconciler.reconcile(body)
        except HeadroomError as err:
            log.warning("Pass failed CapacityPolicy %s error=%s", meta["name"], err)

    def gone(body: Any, **_: Any) -> None:
        reconciler.forget(body["metadata"]["uid"])

    route(registry, PLURAL, handle=handle, timer=tick, gone=gone, interval=interval)
