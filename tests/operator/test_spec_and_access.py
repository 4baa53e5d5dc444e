"""What the operator refuses and what it may not do: bad specs, dry runs, missing RBAC.

Bad specs are stopped by the chart CRD's schema where a schema can say it (the API
answers 422 and nothing is stored), otherwise by the controller with
``Ready=False, reason=InvalidSpec`` and a one-line message naming the field — and
nothing is created until the spec changes. ``--dry-run`` writes only the status.
The operator runs with the rendered chart's RBAC; without one verb it gets a 403.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.harness.chart_install import drop_verb
from tests.operator.conftest import operator_env
from tests.operator.support import GROUP, NS, PLURAL, VERSION, OperatorEnv, wait_for

pytestmark = [pytest.mark.k8s, pytest.mark.redis, pytest.mark.slow]


def _create(env: OperatorEnv, name: str, spec: dict[str, object], strict: bool = False) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RedisCluster",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }
    kw: dict[str, Any] = {"field_validation": "Strict"} if strict else {}
    env.custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body, **kw)


def _rejected(env: OperatorEnv, spec: dict[str, object], strict: bool = False) -> str:
    with pytest.raises(ApiException) as info:
        _create(env, "bad", spec, strict)
    assert info.value.status in (400, 422)
    return str(info.value.body)


def test_bad_specs_are_refused_and_nothing_is_applied(env: OperatorEnv) -> None:
    env.start_operator("op-a")
    # The schema says it: the API refuses, nothing is stored.
    assert "spec.masters" in _rejected(env, {"masters": 2})
    assert "spec.masters" in _rejected(env, {"masters": "three"})
    assert "spec.replicasPerMaster" in _rejected(env, {"masters": 3, "replicasPerMaster": -1})
    assert "shards" in _rejected(env, {"masters": 3, "shards": 4}, strict=True)
    assert env.custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["items"] == []

    # The schema cannot say it (the Secret does not exist): InvalidSpec, nothing created.
    _create(env, "cart", {"masters": 3, "replicasPerMaster": 0, "auth": {"secretName": "nope"}})
    wait_for(env.has_reason("cart", "Ready", "InvalidSpec"), 60, "Ready=False InvalidSpec")
    cond = env.condition("cart", "Ready")
    assert cond["status"] == "False"
    assert cond["message"].startswith("spec.auth.secretName:")
    assert "\n" not in cond["message"]
    assert env.status("cart")["phase"] == "Invalid"
    assert env.status("cart")["observedGeneration"] == env.get("cart")["metadata"]["generation"]
    with pytest.raises(ApiException) as info:
        env.apps.read_namespaced_stateful_set("cart", NS)
    assert info.value.status == 404
    wait_for(
        lambda: "InvalidSpec" in {e.reason for e in env.events("cart")}, 20, "an InvalidSpec Event"
    )

    # Fixing the spec is what retries it.
    env.custom.patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, "cart", {"spec": {"auth": None}}
    )
    wait_for(env.ready_with("cart", 3), 120, "cart Ready once the spec is fixed")

    # A scale below three masters through /scale is refused by the schema too.
    with pytest.raises(ApiException) as info:
        env.scale("cart", 2)
    assert info.value.status == 422
    assert env.get("cart")["spec"]["masters"] == 3


def test_dry_run_writes_only_the_status(env: OperatorEnv) -> None:
    env.start_operator("op-a", "--dry-run")
    env.create_cluster("cart", masters=3, replicas=1)
    wait_for(env.has_reason("cart", "Scaling", "DryRun"), 60, "the dry run's status")
    cond = env.condition("cart", "Scaling")
    assert cond["message"] == "would create a StatefulSet of 6 pods and form 3 masters"
    for read in (
        lambda: env.apps.read_namespaced_stateful_set("cart", NS),
        lambda: env.core.read_namespaced_service("cart", NS),
    ):
        with pytest.raises(ApiException) as info:
            read()
        assert info.value.status == 404
    assert env.kubelet.processes == {}


def test_a_verb_missing_from_the_chart_rbac_is_a_403(tmp_path: Path) -> None:
    def no_statefulset_create(objects: list[Any]) -> None:
        assert drop_verb(objects, "statefulsets", "create") >= 1

    with operator_env(tmp_path, edit_rules=no_statefulset_create) as env:
        env.start_operator("op-a")
        env.create_cluster("cart", masters=3, replicas=1)
        wait_for(
            env.has_reason("cart", "Ready", "ReconcileFailed"),
            60,
            "Ready=False ReconcileFailed",
        )
        cond = env.condition("cart", "Ready")
        assert "403" in cond["message"] and "StatefulSet" in cond["message"]
        denied = [
            r
            for r in env.kube.audit
            if r.code == 403 and r.resource == "statefulsets" and r.verb == "create"
        ]
        assert denied and denied[0].user.startswith("system:serviceaccount:")
        print(f"403 as expected: {denied[0]} / status message: {cond['message']}")
