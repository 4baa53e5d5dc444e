"""`headroom calendar import` and `headroom surge` against the API emulator, as a user
holding only the chart's DemandEvent editor and CapacityPolicy viewer roles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from typer.testing import CliRunner

from headroom.cli.main import app
from tests.harness.chart_install import OperatorAccess
from tests.harness.harness import KubeHarness
from tests.support.chart import EXAMPLES_DIR, example, of_kind

pytestmark = pytest.mark.k8s
k8s: Any = client
GV = ("headroom.dev", "v1alpha1")
NS = "shop"
runner = CliRunner()


@pytest.fixture
def user_config(kube: KubeHarness, chart_operator: OperatorAccess, tmp_path: Path) -> Path:
    """A kubeconfig for user ana, bound in namespace shop to the chart's demandevent-editor
    and capacitypolicy-viewer ClusterRoles (nothing else)."""
    kube.ensure_namespace(NS)
    roles = {o["metadata"]["name"] for o in of_kind(chart_operator.objects, "ClusterRole")}
    for role in ("headroom-demandevent-editor", "headroom-capacitypolicy-viewer"):
        assert role in roles
        kube.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": role, "namespace": NS},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
                "subjects": [{"kind": "User", "name": "ana"}],
            }
        )
    policy = example("capacitypolicy-shop.yaml")
    policy["metadata"]["namespace"] = NS
    kube.apply(policy)
    return kube.kubeconfig(tmp_path / "ana", token=kube.user_token("ana"), namespace=NS)


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def events(kube: KubeHarness) -> dict[str, dict[str, Any]]:
    listed = k8s.CustomObjectsApi(kube.api_client()).list_namespaced_custom_object(
        *GV, NS, "demandevents"
    )
    return {o["metadata"]["name"]: o for o in listed["items"]}


def test_import_is_idempotent_and_prunes_what_left_the_file(
    kube: KubeHarness, user_config: Path, tmp_path: Path
) -> None:
    cal = tmp_path / "shop.yaml"
    cal.write_text((EXAMPLES_DIR / "calendar-shop.yaml").read_text())
    res = invoke(
        "calendar",
        "import",
        str(cal),
        "--kubeconfig",
        str(user_config),
        "--json",
        "--from",
        "2026-01-01",
        "--to",
        "2027-01-01",
    )
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    assert (len(report["created"]), report["updated"], report["namespace"]) == (3, [], NS)
    assert report["outside_window"] == 0
    narrow = invoke(
        "calendar",
        "import",
        str(cal),
        "--kubeconfig",
        str(user_config),
        "--dry-run",
        "--from",
        "2026-06-01",
        "--to",
        "2027-01-01",
    )
    assert "0 events would be created, 0 would be updated, 2 unchanged" in narrow.stdout
    assert "1 outside --from/--to, not imported" in narrow.stdout
    first = events(kube)
    assert sorted(first) == sorted(report["created"])
    for obj in first.values():
        assert obj["metadata"]["labels"] == {
            "headroom.dev/managed-by": "calendar-import",
            "headroom.dev/calendar": "shop",
        }
    # Twice: nothing changes, not even a resourceVersion.
    res = invoke(
        "calendar",
        "import",
        str(cal),
        "--kubeconfig",
        str(user_config),
        "--json",
        "--from",
        "2026-01-01",
        "--to",
        "2027-01-01",
    )
    again = json.loads(res.stdout)
    assert (again["created"], again["updated"], len(again["unchanged"])) == ([], [], 3)
    assert {n: o["metadata"]["resourceVersion"] for n, o in events(kube).items()} == {
        n: o["metadata"]["resourceVersion"] for n, o in first.items()
    }
    # An event changes and one leaves the file: update in place, prune only with --prune.
    text = cal.read_text().replace("multiplier: 4", "multiplier: 5")
    text = text[: text.index("  - name: 618 midnight livestream")]
    cal.write_text(text)
    args = [
        "calendar",
        "import",
        str(cal),
        "--kubeconfig",
        str(user_config),
        "--json",
        "--from",
        "2026-01-01",
        "--to",
        "2027-01-01",
    ]
    kept = json.loads(invoke(*args).stdout)
    assert (len(kept["updated"]), kept["deleted"]) == (1, [])
    assert len(events(kube)) == 3
    dry = json.loads(invoke(*args, "--prune", "--dry-run").stdout)
    assert len(dry["deleted"]) == 1 and len(events(kube)) == 3
    pruned = json.loads(invoke(*args, "--prune").stdout)
    assert pruned["deleted"] == dry["deleted"] and len(events(kube)) == 2
    (spring,) = [o for o in events(kube).values() if o["spec"]["name"] == "Spring livestream"]
    assert spring["spec"]["expectation"] == {"multiplier": 5.0}
    assert spring["spec"]["policySelector"] == {"matchLabels": {"app": "shop"}}


def test_import_of_an_ics_calendar_and_a_bad_file_applies_nothing(
    kube: KubeHarness, user_config: Path, tmp_path: Path
) -> None:
    ics = EXAMPLES_DIR / "calendar-shop.ics"
    res = invoke(
        "calendar",
        "import",
        str(ics),
        "--kubeconfig",
        str(user_config),
        "--from",
        "2026-01-01",
        "--to",
        "2027-01-01",
    )
    assert res.exit_code == 0, res.stderr
    assert "9 events created" in res.stdout
    assert len(events(kube)) == 9
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "events:\n  - {name: A, start: 2026-05-01T10:00:00Z, end: 2026-05-01T09:00:00Z}\n"
    )
    res = invoke("calendar", "import", str(bad), "--kubeconfig", str(user_config))
    assert res.exit_code == 2
    assert res.stderr == f'error: {bad}: event "A": end is before start\n'
    assert len(events(kube)) == 9


def test_import_refuses_to_take_over_an_object_it_does_not_manage(
    kube: KubeHarness, user_config: Path, tmp_path: Path
) -> None:
    cal = tmp_path / "shop.yaml"
    cal.write_text((EXAMPLES_DIR / "calendar-shop.yaml").read_text())
    args = [
        "calendar",
        "import",
        str(cal),
        "--kubeconfig",
        str(user_config),
        "--json",
        "--from",
        "2026-01-01",
        "--to",
        "2027-01-01",
    ]
    names = json.loads(invoke(*args, "--dry-run").stdout)["created"]
    assert events(kube) == {}
    hand = example("demandevent-launch.yaml")
    hand["metadata"] = {"name": names[1], "namespace": NS}
    kube.apply(hand)
    res = invoke(*args)
    assert res.exit_code == 2
    assert "exists and is not managed by the import of calendar 'shop'" in res.stderr
    assert list(events(kube)) == [names[1]]


def test_surge_creates_an_immediate_event_for_the_targets_policy(
    kube: KubeHarness, user_config: Path
) -> None:
    res = invoke(
        "surge",
        "cart",
        "--factor",
        "2.5",
        "--for",
        "30m",
        "--kubeconfig",
        str(user_config),
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    obj = json.loads(res.stdout)
    spec = obj["spec"]
    assert spec["expectation"] == {"multiplier": 2.5}
    assert spec["policySelector"] == {"matchLabels": {"headroom.dev/policy": "shop"}}
    from headroom.policies.resources import calendar_from_resources, policy_from_resource

    policy = k8s.CustomObjectsApi(kube.api_client()).get_namespaced_custom_object(
        *GV, NS, "capacitypolicies", "shop"
    )
    cal = calendar_from_resources(
        events(kube).values(), policy_from_resource(policy).event_selector
    )
    (event,) = cal.events
    assert event.end - event.start == 1800
    for args, message in (
        (["surge", "nope"], "nope: no CapacityPolicy in namespace shop sizes it"),
        (["surge", "cart", "--factor", "0.5"], "--factor: must be > 1 and <= 1000, not 0.5"),
        (["surge", "cart", "--for", "soon"], "--for: must be a duration"),
        (["surge", "Deployment/cart"], "Deployment/cart: no CapacityPolicy"),
    ):
        res = invoke(*args, "--kubeconfig", str(user_config))
        assert res.exit_code == 2 and message in res.stderr, res.stderr
    assert len(events(kube)) == 1


def test_surge_as_a_real_process(kube: KubeHarness, user_config: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(user_config)}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "headroom"), "surge", "web", "--for", "1h", "-n", NS],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "CapacityPolicy shop expects x2 demand on web" in proc.stdout
    (obj,) = events(kube).values()
    assert obj["metadata"]["labels"]["headroom.dev/target"] == "web"


def test_without_the_editor_role_nothing_is_written(
    kube: KubeHarness, chart_operator: OperatorAccess, tmp_path: Path
) -> None:
    kube.ensure_namespace(NS)
    config = kube.kubeconfig(tmp_path / "bob", token=kube.user_token("bob"), namespace=NS)
    res = invoke(
        "calendar", "import", str(EXAMPLES_DIR / "calendar-shop.yaml"), "--kubeconfig", str(config)
    )
    assert res.exit_code == 1
    assert "403" in res.stderr and "demandevents" in res.stderr
    assert len(res.stderr.splitlines()) == 1
