"""``headroom plan`` shows what the operator does: on the same inputs (the CapacityPolicy,
its csv metrics source, the namespace's DemandEvents, the status it keeps), the plan the
CLI prints — from the cluster and from the same files — is the plan the operator's pass
writes to ``status.plan``, and its first order after the pass is ``status.nextAction``.
Two passes: the first scales in, so the second plan must start from the units and the
driver state the first left in the status (the next scale-in waits ``scaleIn.interval``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from headroom.cli.main import app
from headroom.controller.kube import GROUP, VERSION, Kube
from headroom.controller.operator.capacitypolicy import CapacityPolicyReconciler
from headroom.policies.calendar import DemandEvent, EventKind
from headroom.policies.calendars import event_to_resource
from headroom.policies.synthetic import generate_trace
from tests.harness.harness import KubeHarness
from tests.support.chart import chart_crd
from tests.support.traces import write_events_yaml, write_trace_csv
from tests.targets.support import NS, workload

pytestmark = pytest.mark.k8s

DAY = 86400.0
T0 = 1_700_006_400.0 + 14 * DAY + 18 * 3600  # 18:00 UTC; a promotion starts at 20:00


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def now(self) -> float:
        return self.at

    def sleep(self, seconds: float) -> None:  # pragma: no cover - not used by a pass
        raise AssertionError("not used")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _spec(history: Path) -> dict[str, Any]:
    return {
        "targets": [
            {
                "name": "web",
                "kind": "Deployment",
                "namespace": NS,
                "capacityPerUnit": 500,
                "minUnits": 2,
                "maxUnits": 40,
                "provisioning": {"fixedSeconds": "5m"},
            }
        ],
        "metrics": {"qps": {"source": "csv", "url": str(history)}},
        # Less history than the file holds: the operator reads 7 days of it.
        "forecast": {"history": "7d", "horizon": "6h"},
    }


def _rows(actions: list[dict[str, Any]], after: float) -> list[tuple[Any, ...]]:
    """The CLI's actions as the status keeps them: from the pass on, at most 5."""
    rows = [
        (_epoch(a["at"]), _epoch(a["ready_by"]), a["from_units"], a["to_units"], a["reason"],
         a["event"], a["capped"])
        for a in actions
        if _epoch(a["at"]) >= after
    ]  # fmt: skip
    return rows[:5]


def _status_rows(status: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (_epoch(p["at"]), _epoch(p["readyBy"]), p["fromUnits"], p["toUnits"], p["reason"],
         p.get("event"), p.get("capped", False))
        for p in status.get("plan") or ()
    ]  # fmt: skip


def test_plan_is_what_the_operator_does(kube: KubeHarness, api: Kube, tmp_path: Path) -> None:
    kube.apply(chart_crd(f"capacitypolicies.{GROUP}"))
    kube.apply(chart_crd(f"demandevents.{GROUP}"))
    kube.apply(workload("Deployment", "web", 20))  # more than the demand needs: a scale-in
    sale = T0 + 2 * 3600
    events = [
        DemandEvent(f"Promo {d}", EventKind.PROMOTION, sale - d * DAY, sale - d * DAY + 3600)
        for d in (9, 6, 3, 1, 0)
    ]
    trace = generate_trace(T0 - 12 * DAY, 12, 60.0, 3000.0, events[:4], [3.0] * 4, seed=4)
    history = write_trace_csv(tmp_path / "qps.csv", trace)
    calendar = write_events_yaml(tmp_path / "promos.yaml", events)
    for i, event in enumerate(events):
        kube.apply(event_to_resource(event, f"promo-{i}", NS))
    policy_file = tmp_path / "shop.yaml"
    policy_file.write_text(yaml.safe_dump({"name": "shop", **_spec(history)}))
    kube.apply(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CapacityPolicy",
            "metadata": {"name": "shop", "namespace": NS},
            "spec": _spec(history),
        }
    )
    admin = kube.kubeconfig(tmp_path / "admin", namespace=NS)
    clock = Clock(T0)

    def cli(*args: str) -> dict[str, Any]:
        res = CliRunner().invoke(app, ["plan", *args, "--at", _iso(clock.at), "--json"])
        assert res.exit_code == 0, res.output
        (target,) = json.loads(res.stdout)["targets"]
        return dict(target)

    def body() -> dict[str, Any]:
        obj = kube.get(f"{GROUP}/{VERSION}", "CapacityPolicy", "shop", NS)
        assert obj is not None
        return obj

    for n in range(2):  # the second pass starts from what the first left in the status
        ours = cli("--from-cluster", "shop", "--kubeconfig", str(admin), "-n", NS)
        files = ("--history", str(history), "--calendar", str(calendar))
        local = cli(*files, "--policy", str(policy_file), "--current-units", "20")
        # An operator (re)started now: it refits, as plan does. (A running one forecasts
        # again every 15 min and moves its model's level in between.)
        outcome = CapacityPolicyReconciler(api, clock=clock).reconcile(body())
        assert outcome.report is not None
        status = body()["status"]

        written = _status_rows(status)
        print("OURS", _rows(ours["actions"], clock.at)[:3])
        print("OP", written[:3])
        assert written, status  # the promotion ahead is planned for
        assert any(row[5] == "Promo 0" for row in written), written
        assert _rows(ours["actions"], clock.at) == written
        if n == 0:  # the files hold no driver state: the same inputs only before a pass
            assert _rows(local["actions"], clock.at) == written
        upcoming = [a for a in ours["actions"] if _epoch(a["at"]) > clock.at]
        first = datetime.fromtimestamp(_epoch(upcoming[0]["at"]), UTC)
        assert status["nextAction"] == (
            f"{first:%Y-%m-%d %H:%M}Z web {upcoming[0]['from_units']}->{upcoming[0]['to_units']}"
        )
        clock.at += 60.0
