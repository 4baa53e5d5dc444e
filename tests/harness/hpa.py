"""The emulator's horizontal-pod-autoscaler controller (kube-controller-manager's part).

No real HPA controller can run here, so the e2e tests that raise an HPA's floor get
this one. It follows the documented autoscaling/v2 algorithm on a background thread,
every ``sync_period`` seconds, for each HorizontalPodAutoscaler in the store:

- scale target at 0 replicas: autoscaling is disabled (left alone);
- above ``maxReplicas``: scaled down to it; below ``minReplicas`` (default 1): scaled up
  to it, before any metric is read (this is what makes a raised floor take effect);
- otherwise the metrics decide: for each ``External`` or ``Object`` metric,
  ``AverageValue`` targets give ``ceil(value / averageValue)`` replicas and ``Value``
  targets ``ceil(current * value / target)``, skipped inside the 10 % tolerance; the
  largest proposal wins, clamped to ``[minReplicas, maxReplicas]``;
- scale-down is stabilised: the highest recommendation of the last
  ``behavior.scaleDown.stabilizationWindowSeconds`` (default 300 s) is used;
- no metric value (the metrics API has nothing): no scaling on metrics, as the real
  controller does (condition ``ScalingActive=False``).

Metric values come from ``metrics(namespace, metric_name)``, the stand-in for the
external/custom metrics APIs (a test reads them from its real Prometheus). Scale writes
go through the target's ``/scale`` subresource in the store; the HPA's status gets
``currentReplicas``, ``desiredReplicas``, ``lastScaleTime`` and the conditions.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.harness.errors import ApiError
from tests.harness.store import Obj, Store, now_rfc3339

log = logging.getLogger(__name__)

TOLERANCE = 0.1  # kube-controller-manager's --horizontal-pod-autoscaler-tolerance default
DEFAULT_DOWN_WINDOW = 300.0  # behavior.scaleDown.stabilizationWindowSeconds default

MetricReader = Callable[[str, str], float | None]


def _quantity(value: Any) -> float:
    """A Kubernetes quantity as a float (plain numbers and the milli suffix suffice here)."""
    text = str(value).strip()
    if text.endswith("m"):
        return float(text[:-1]) / 1000.0
    return float(text)


class HpaController:
    """Reconciles every HPA in ``store``; see the module docstring."""

    def __init__(self, store: Store, metrics: MetricReader, *, sync_period: float = 1.0) -> None:
        self.store = store
        self.metrics = metrics
        self.sync_period = sync_period
        self.errors: list[str] = []
        self.scales: list[tuple[float, str, int, int]] = []  # (time, hpa, from, to)
        self._recommendations: dict[tuple[str, str], list[tuple[float, int]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._hpas = store.type("autoscaling", "horizontalpodautoscalers")

    def start(self) -> HpaController:
        self._thread = threading.Thread(target=self._run, daemon=True, name="hpa-controller")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.sync_period):
            try:
                self.sync()
            except ApiError as err:  # a racing write; the next sync sees it
                log.debug("HPA sync hit %s", err.message)
            except Exception as err:  # noqa: BLE001 - keep the controller alive, report it
                self.errors.append(f"{type(err).__name__}: {err}")
                log.exception("HPA sync failed")

    def sync(self) -> None:
        for hpa in self.store.list_objects(self._hpas, None)[0]:
            self._reconcile(hpa, time.monotonic())

    def _reconcile(self, hpa: Obj, now: float) -> None:
        meta, spec = hpa["metadata"], hpa.get("spec") or {}
        ns, name = meta["namespace"], meta["name"]
        ref = spec.get("scaleTargetRef") or {}
        rt = self.store.type_for_kind(ref.get("apiVersion") or "apps/v1", ref.get("kind", ""))
        scale = self.store.get_scale(rt, ns, ref.get("name", ""))
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        lo, hi = int(spec.get("minReplicas") or 1), int(spec["maxReplicas"])
        active, reason = True, "ValidMetricFound"
        if current == 0 and lo != 0:
            return  # scaled to zero by someone: autoscaling is disabled
        if current > hi:
            desired, reason = hi, "TooManyReplicas"
        elif current < lo:
            desired, reason = lo, "TooFewReplicas"
        else:
            proposal = self._from_metrics(ns, spec.get("metrics") or (), current)
            if proposal is None:
                desired, active, reason = current, False, "FailedGetExternalMetric"
            else:
                desired = self._stabilised(ns, name, min(max(proposal, lo), hi), current, spec, now)
        if desired != current:
            self.store.update_scale(rt, ns, ref["name"], {"spec": {"replicas": desired}})
            self.scales.append((time.time(), name, current, desired))
        self._write_status(hpa, current, desired, active, reason)

    def _from_metrics(self, ns: str, metrics: Any, current: int) -> int | None:
        proposals = []
        for metric in metrics:
            source = metric.get("external" if metric.get("type") == "External" else "object") or {}
            metric_name = (source.get("metric") or {}).get("name", "")
            target = source.get("target") or {}
            value = self.metrics(ns, metric_name)
            if value is None or not math.isfinite(value):
                continue
            if target.get("type") == "AverageValue":
                proposals.append(math.ceil(value / _quantity(target["averageValue"])))
            elif target.get("type") == "Value":
                ratio = value / _quantity(target["value"])
                proposals.append(
                    current if abs(ratio - 1) <= TOLERANCE else math.ceil(current * ratio)
                )
        return max(proposals) if proposals else None

    def _stabilised(
        self, ns: str, name: str, desired: int, current: int, spec: Obj, now: float
    ) -> int:
        down = ((spec.get("behavior") or {}).get("scaleDown") or {}).get(
            "stabilizationWindowSeconds", DEFAULT_DOWN_WINDOW
        )
        history = self._recommendations.setdefault((ns, name), [])
        history.append((now, desired))
        history[:] = [(t, d) for t, d in history if now - t <= float(down)]
        if desired < current:
            return min(current, max(d for _, d in history))
        return desired

    def _write_status(self, hpa: Obj, current: int, desired: int, active: bool, why: str) -> None:
        old = hpa.get("status") or {}
        status: Obj = {
            "currentReplicas": current,
            "desiredReplicas": desired,
            "conditions": [
                {"type": "AbleToScale", "status": "True", "reason": "SucceededRescale"},
                {"type": "ScalingActive", "status": "True" if active else "False", "reason": why},
            ],
        }
        if desired != current:
            status["lastScaleTime"] = now_rfc3339()
        elif "lastScaleTime" in old:
            status["lastScaleTime"] = old["lastScaleTime"]
        if status == old:
            return
        meta = hpa["metadata"]
        try:
            self.store.mutate(
                self._hpas,
                meta["namespace"],
                meta["name"],
                lambda o: o.__setitem__("status", status),
                subresource="status",
            )
        except ApiError as err:
            if err.code != 404:
                raise
