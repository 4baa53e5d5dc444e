"""Operator pass time: 200 CapacityPolicies over 1,000 Deployments, one reconcile each.

What the CapacityPolicy controller does every pass, end to end and in one process: the
reconciler (``controller/operator/capacitypolicy.py``) reads each policy, lists the
namespace's DemandEvents, runs one pass of the policy's ``ControlLoop`` (forecast over 28
days of 1-minute history, plan, act through ``assembly.targets_for``: the /scale
subresource of each Deployment) and writes the status — against the Kubernetes API
emulator over real HTTP with the official client. The histories are in memory (a
Prometheus stand-in), so the figure is Headroom's own work plus its API calls.

Peer, in the same run: the engine alone (``HeadroomForecaster.fit_many`` + predict + the
rule's decision and plan ahead, ``bench/engine_speed.py``'s ``rule_pass``, for the same
1,000 targets, no Kubernetes), i.e. what the pass would cost with free API
calls. Target: a pass over all policies under 5 s (issue 12).

Run: ``.venv/bin/python bench/operator_pass.py [--policies 200] [--targets-per-policy 5]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `bench` and `tests` importable
    sys.path.insert(0, str(ROOT))

from bench._report import write_section  # noqa: E402
from bench.engine_speed import rule_pass  # noqa: E402
from headroom.controller import assembly  # noqa: E402
from headroom.controller.kube import GROUP, VERSION, Kube  # noqa: E402
from headroom.controller.operator.capacitypolicy import CapacityPolicyReconciler  # noqa: E402
from headroom.policies.calendar import Calendar, DemandEvent, EventKind  # noqa: E402
from headroom.policies.forecast.model import HeadroomForecaster  # noqa: E402
from headroom.policies.resources import policy_from_resource  # noqa: E402
from headroom.policies.series import Series  # noqa: E402
from headroom.policies.synthetic import generate_trace  # noqa: E402
from tests.harness.harness import KubeHarness  # noqa: E402
from tests.support.chart import chart_crds  # noqa: E402

NS = "shop"
DAY = 86400.0
TARGET_S = 5.0


class StaticHistory:
    def __init__(self, series: Series) -> None:
        self.series = series

    def history(self, end: float) -> Series:
        return self.series.before(end)


def _deployment(name: str) -> dict[str, Any]:
    pod = {
        "metadata": {"labels": {"app": "w"}},
        "spec": {"containers": [{"name": "w", "image": "w"}]},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "w"}}, "template": pod},
    }


def _policy(i: int, per: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "CapacityPolicy",
        "metadata": {"name": f"p{i:03d}", "namespace": NS},
        "spec": {
            "targets": [
                {"name": f"web-{i:03d}-{j}", "kind": "Deployment", "capacityPerUnit": 500,
                 "minUnits": 2, "maxUnits": 200, "provisioning": {"fixedSeconds": "2m"}}
                for j in range(per)
            ],
            "metrics": {"qps": {"source": "prometheus", "url": "http://prometheus:9090"}},
            "forecast": {"history": "28d", "horizon": "6h"},
        },
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policies", type=int, default=200)
    ap.add_argument("--targets-per-policy", type=int, default=5)
    args = ap.parse_args()
    n, per = args.policies, args.targets_per_policy
    now = time.time()
    start = now - 28 * DAY
    shows = [
        DemandEvent(f"live {d}", EventKind.LIVESTREAM, start + d * DAY + 20 * 3600,
                    start + d * DAY + 21 * 3600, labels={"host": "a"})
        for d in range(0, 28, 3)
    ]  # fmt: skip
    rng = np.random.default_rng(1)
    base = generate_trace(start, 28, 60.0, 1000.0, shows, [3.0] * len(shows), seed=2)
    histories = [
        Series(base.t, base.v * float(rng.uniform(0.5, 5.0))).before(now) for _ in range(n)
    ]
    with tempfile.TemporaryDirectory() as tmp, KubeHarness(Path(tmp), rbac=False) as kube:
        kube.apply(chart_crds())
        kube.ensure_namespace(NS)
        api = kube.api_client()
        k = Kube(api)
        with Progress(transient=True) as progress:
            task = progress.add_task("creating objects", total=n * (per + 1) + len(shows))
            for show in shows:
                k.custom.create_namespaced_custom_object(GROUP, VERSION, NS, "demandevents", {
                    "apiVersion": f"{GROUP}/{VERSION}", "kind": "DemandEvent",
                    "metadata": {"name": show.name.replace(" ", "-")},
                    "spec": {"kind": "livestream", "labels": {"host": "a"},
                             "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(show.start)),
                             "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(show.end))},
                })  # fmt: skip
                progress.advance(task)
            bodies = []
            for i in range(n):
                for j in range(per):
                    k.apps.create_namespaced_deployment(NS, _deployment(f"web-{i:03d}-{j}"))
                    progress.advance(task)
                bodies.append(
                    k.custom.create_namespaced_custom_object(
                        GROUP, VERSION, NS, "capacitypolicies", _policy(i, per)
                    )
                )
                progress.advance(task)
        by_name = {f"p{i:03d}": histories[i] for i in range(n)}
        reconciler = CapacityPolicyReconciler(
            k,
            targets_for=assembly.targets_for,
            history_for=lambda spec, ns: StaticHistory(by_name[spec.name]),
        )

        def one_pass() -> float:
            began = time.perf_counter()
            listed = k.custom.list_namespaced_custom_object(GROUP, VERSION, NS, "capacitypolicies")
            done = reconciler.reconcile_all(listed["items"])
            assert all(o is not None for o in done)
            return time.perf_counter() - began

        cold = one_pass()
        warm = min(one_pass() for _ in range(2))

    # Peer: the engine alone on the same 1,000 targets.
    specs = [policy_from_resource(b) for b in bodies]
    calendar = Calendar.of(shows)
    began = time.perf_counter()
    models = HeadroomForecaster.fit_many(
        [h for h in histories for _ in range(per)], calendar, specs[0].forecast
    )
    runs = [(s, t, h) for s, h in zip(specs, histories, strict=True) for t in s.targets]
    for model, (spec, target, history) in zip(models, runs, strict=True):
        fc = model.predict(now, 6 * 3600, 60.0, (0.5, spec.forecast.quantile))
        rule_pass(spec, target, fc, history, calendar, now)
    engine = time.perf_counter() - began

    peer_row = (
        f"| peer: the engine alone (`fit_many` + predict + the rule of {n * per} targets, no API) "
        f"| {engine:.2f} s | {engine / n * 1000:.1f} ms |"
    )
    load = os.getloadavg()[0]
    met = "met" if cold < TARGET_S and warm < TARGET_S else "**missed**"
    body = f"""
{n} CapacityPolicies x {per} Deployments = {n * per} targets, 28 days of 1-minute history
each, {len(shows)} DemandEvents; one `reconcile()` per policy through the API emulator
(real HTTP, official client): read the policy, list DemandEvents, one ControlLoop pass
(forecast, plan, read and scale each Deployment via /scale), write the status.

| pass | time | per policy |
|---|---:|---:|
| first (every model fitted) | {cold:.2f} s | {cold / n * 1000:.1f} ms |
| next (models cached; best of 2) | {warm:.2f} s | {warm / n * 1000:.1f} ms |
{peer_row}

Target: a pass over all of them under {TARGET_S:.0f} s: {met} (1-minute load average
{load:.1f} on {os.cpu_count()} CPUs at the end of the run).
"""
    print(body)
    write_section("operator_pass", "Operator: one pass over 200 policies / 1,000 targets", body)
    return 0 if met == "met" else 1


if __name__ == "__main__":
    raise SystemExit(main())
