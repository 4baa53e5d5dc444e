"""``headroom plan|forecast --from-cluster NAME`` read the CapacityPolicy, its history (from
the policy's own metrics source) and the namespace's DemandEvents from the cluster, and
show the same plan and forecast as the same inputs given as files."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from headroom.cli.main import app
from headroom.policies.calendar import DemandEvent, EventKind
from headroom.policies.synthetic import generate_trace
from tests.operator.support import GROUP, NS, VERSION, OperatorEnv
from tests.support.traces import write_events_yaml, write_trace_csv

pytestmark = [pytest.mark.k8s]

DAY = 86400.0


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        "forecast": {"history": "7d", "horizon": "6h"},
    }


def _run(*args: str) -> Any:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_plan_and_forecast_from_the_cluster_match_the_same_inputs_as_files(
    env: OperatorEnv, tmp_path: Path
) -> None:
    at = float(int(time.time() // 60 * 60))
    sale = at + 2 * 3600
    events = [
        DemandEvent(f"Promo {d}", EventKind.PROMOTION, sale - d * DAY, sale - d * DAY + 3600)
        for d in (3, 2, 1, 0)
    ]
    trace = generate_trace(at - 4 * DAY, 4, 60.0, 3000.0, events[:3], [3.0] * 3, seed=4)
    history = write_trace_csv(tmp_path / "qps.csv", trace)
    calendar = write_events_yaml(tmp_path / "promos.yaml", events)
    policy = tmp_path / "shop.yaml"
    policy.write_text(yaml.safe_dump({"name": "shop", **_spec(history)}))
    admin = env.kube.kubeconfig(tmp_path / "admin", namespace=NS)
    kube = ("--kubeconfig", str(admin), "-n", NS)
    CliRunner().invoke(app, ["calendar", "import", str(calendar), *kube])
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "CapacityPolicy",
        "metadata": {"name": "shop", "namespace": NS},
        "spec": _spec(history),
        # As the operator would have written it: the plan starts from what runs now.
        "status": {"targets": [{"name": "web", "kind": "Deployment", "currentUnits": 3,
                                "readyUnits": 3}]},
    }  # fmt: skip
    env.custom.create_namespaced_custom_object(GROUP, VERSION, NS, "capacitypolicies", body)
    env.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, NS, "capacitypolicies", "shop", {"status": body["status"]}
    )

    when = ("--at", _iso(at), "--json")
    files = ("--history", str(history), "--calendar", str(calendar))
    cluster = _run("plan", "--from-cluster", "shop", *kube, *when)
    local = _run("plan", *files, "--policy", str(policy), "--current-units", "3", *when)
    (ours,), (theirs,) = cluster["targets"], local["targets"]
    assert ours["current_units"] == 3  # from the policy's status
    assert ours["actions"] == theirs["actions"] and ours["actions"], ours
    assert any("Promo 0" in a["reason"] for a in ours["actions"]), ours["actions"]
    assert ours["timeline"] == theirs["timeline"]

    forecast_cluster = _run("forecast", "--from-cluster", "shop", *kube, *when)
    forecast_local = _run("forecast", *files, "--policy", str(policy), *when)
    assert forecast_cluster["points"] == forecast_local["points"] and forecast_cluster["points"]
    assert forecast_cluster["history_samples"] == forecast_local["history_samples"]
    assert [e["name"] for e in forecast_cluster["events"]] == ["Promo 0"]


def test_from_cluster_refuses_files_and_names_a_missing_policy(
    env: OperatorEnv, tmp_path: Path
) -> None:
    admin = env.kube.kubeconfig(tmp_path / "admin", namespace=NS)
    kube = ("--kubeconfig", str(admin), "-n", NS)
    cases = [
        (["plan", "--from-cluster", "shop", "--history", "x.csv", *kube],
         "error: --history: not with --from-cluster"),
        (["forecast", "--from-cluster", "nope", *kube],
         f"error: --from-cluster: no CapacityPolicy 'nope' in namespace '{NS}'"),
    ]  # fmt: skip
    for args, start in cases:
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2, res.output
        assert res.stderr.startswith(start) and len(res.stderr.splitlines()) == 1, res.stderr
