"""A CapacityPolicy cannot make the operator read a file or quote one (issue 21, High 1).

A namespace editor (bound to the chart's CapacityPolicy editor role, as the aggregated
``edit`` role gives it) ``kubectl apply``s policies whose ``metrics.qps`` is ``source:
csv`` with a path to a secret of the operator's filesystem, to ``/dev/zero``, and, with a
directory allowed, to paths that escape it (``..``, a symlink), to a non-CSV file inside
it and to a file over the size cap. The real ``headroom operator run`` (the chart's RBAC)
refuses or reports each with one line naming the field, keeps running, and no byte of
the secret reaches the status or an Event.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from headroom.controller.files import TRACE_MAX_BYTES
from tests.operator.support import GROUP, NS, VERSION, OperatorEnv, wait_for
from tests.operator.test_capacitypolicy import _deployment
from tests.support.chart import of_kind, render_chart
from tests.support.kubectl import Kubectl, have_kubectl, make_kubectl

pytestmark = [
    pytest.mark.k8s,
    pytest.mark.slow,
    pytest.mark.skipif(not have_kubectl(), reason="needs kubectl (.ci/install-system-deps all)"),
]

SECRET = "s3cr3t-token-5f1e0c9b7a"  # what must never leave the operator


def _editor(env: OperatorEnv, tmp_path: Path) -> Kubectl:
    """kubectl as "mallory", who may edit CapacityPolicies in NS and nothing else."""
    roles = {r["metadata"]["name"]: r for r in of_kind(render_chart(), "ClusterRole")}
    env.kube.apply([
        roles["headroom-capacitypolicy-editor"],
        {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "mallory-edits-policies", "namespace": NS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "headroom-capacitypolicy-editor"},
            "subjects": [{"kind": "User", "name": "mallory"}],
        },
    ], namespace=NS)  # fmt: skip
    token = env.kube.user_token("mallory")
    home = tmp_path / "mallory"
    home.mkdir()
    return make_kubectl(env.kube.kubeconfig(home / "kc", token, NS, tls=True), home)


def _policy(name: str, url: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "CapacityPolicy",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "targets": [{"name": "web", "kind": "Deployment", "capacityPerUnit": 100,
                         "minUnits": 1, "maxUnits": 10}],
            "metrics": {"qps": {"source": "csv", "url": url}},
        },
    }  # fmt: skip


def _ready(env: OperatorEnv, name: str) -> dict[str, Any]:
    obj = env.custom.get_namespaced_custom_object(GROUP, VERSION, NS, "capacitypolicies", name)
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready" and cond.get("reason") not in (None, "", "Reconciled"):
            return dict(cond)
    return {}


def _everything_said(env: OperatorEnv, kubectl: Kubectl) -> str:
    """Every status and Event about the policies, as the API and kubectl show them."""
    listed = env.custom.list_namespaced_custom_object(GROUP, VERSION, NS, "capacitypolicies")
    events = [e.message or "" for e in env.core.list_namespaced_event(NS).items]
    shown = kubectl("get", "capacitypolicies", "-n", NS, "-o", "yaml").stdout
    return json.dumps(listed) + "\n".join(events) + shown


def test_the_operator_refuses_file_sources_by_default(env: OperatorEnv, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(SECRET + "\n")
    kubectl = _editor(env, tmp_path)
    op = env.start_operator("op-a", "--policy-interval", "2")
    wait_for(lambda: "Started operator" in op.text(), 60, "the operator to lead")
    attacks = {"leak": str(secret), "zero": "/dev/zero", "leak-url": f"file://{secret}"}
    for name, url in attacks.items():
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump(_policy(name, url)))
    for name in attacks:
        cond = wait_for(lambda n=name: _ready(env, n), 60, f"{name} to be refused")  # type: ignore[misc]
        assert cond["status"] == "False" and cond["reason"] == "InvalidSpec", cond
        assert cond["message"].startswith("policy: metrics.qps.url: file sources are refused")
    assert op.proc.poll() is None, op.text()[-2000:]
    said = _everything_said(env, kubectl)
    assert "InvalidSpec" in said
    assert SECRET not in said and SECRET[:12] not in said
    assert SECRET not in op.text()


def test_an_allowed_directory_confines_file_sources_and_caps_them(
    env: OperatorEnv, tmp_path: Path
) -> None:
    allowed = tmp_path / "traces"
    allowed.mkdir()
    outside = tmp_path / "token"
    outside.write_text(SECRET + "\n")
    (allowed / "link.csv").symlink_to(outside)
    (allowed / "zero.csv").symlink_to("/dev/zero")
    (allowed / "notes.csv").write_text(SECRET + ",and more\n1,2\n")  # inside, but no trace
    with (allowed / "huge.csv").open("wb") as f:  # sparse: over the cap without the disk
        f.truncate(TRACE_MAX_BYTES + 1)
    kubectl = _editor(env, tmp_path)
    _deployment(env, "web")
    op = env.start_operator("op-a", "--policy-interval", "2", "--allow-file-dir", str(allowed))
    wait_for(lambda: "Started operator" in op.text(), 60, "the operator to lead")
    refused = {
        "outside": str(outside),
        "dotdot": f"{allowed}/../token",
        "link": str(allowed / "link.csv"),
        "zero": str(allowed / "zero.csv"),
        "relative": "traces/notes.csv",
    }
    unreadable = {"notes": str(allowed / "notes.csv"), "huge": str(allowed / "huge.csv")}
    for name, url in {**refused, **unreadable}.items():
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump(_policy(name, url)))
    for name in refused:
        cond = wait_for(lambda n=name: _ready(env, n), 60, f"{name} to be refused")  # type: ignore[misc]
        assert cond["reason"] == "InvalidSpec", (name, cond)
        assert (
            cond["message"] == f"policy: metrics.qps.url: must be an absolute path under {allowed}"
        )
    for name in unreadable:
        cond = wait_for(lambda n=name: _ready(env, n), 60, f"{name} to be unavailable")  # type: ignore[misc]
        assert cond["reason"] == "MetricsUnavailable", (name, cond)
    huge = [e.message for e in env.events("huge") if e.reason == "SourceUnavailable"]
    assert any("over the 64 MiB limit of a trace CSV" in m for m in huge), huge
    notes = [e.message for e in env.events("notes") if e.reason == "SourceUnavailable"]
    assert any("notes.csv: header (line 1) needs columns" in m for m in notes), notes
    assert op.proc.poll() is None, op.text()[-2000:]
    said = _everything_said(env, kubectl)
    assert SECRET not in said and SECRET[:12] not in said
    assert SECRET not in op.text()
    rss_kib = int(
        next(
            line.split()[1]
            for line in Path(f"/proc/{op.proc.pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
    )
    assert rss_kib < 400 * 1024, f"operator RSS {rss_kib} KiB"
    assert os.path.exists(allowed / "huge.csv")
