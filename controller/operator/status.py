"""What ``headroom status`` shows, read from the objects' ``status`` the operator wrote.

One function, :func:`read_status`, shared by the CLI's table and its ``--json``.
"""

from __future__ import annotations

from typing import Any

from headroom.controller.kube import GROUP, VERSION, Kube, call, not_found
from headroom.controller.operator.capacitypolicy import PLURAL as POLICIES
from headroom.controller.operator.rediscluster import PLURAL as CLUSTERS
from headroom.policies.errors import KubernetesError


def _list(kube: Kube, plural: str, namespace: str | None) -> list[dict[str, Any]]:
    try:
        return _list_or_fail(kube, plural, namespace)
    except KubernetesError as err:
        if not_found(err):  # the CRD is not installed: nothing of that kind to show
            return []
        raise


def _list_or_fail(kube: Kube, plural: str, namespace: str | None) -> list[dict[str, Any]]:
    if namespace is None:
        listed = call(
            lambda: kube.custom.list_cluster_custom_object(GROUP, VERSION, plural),
            f"list {plural}",
        )
    else:
        listed = call(
            lambda: kube.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural),
            f"list {plural} in {namespace}",
        )
    return list(listed.get("items") or [])


def _conditions(status: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {k: c.get(k) for k in ("type", "status", "reason", "message")}
        for c in status.get("conditions") or ()
    ]


def _summary(conds: list[dict[str, Any]]) -> str:
    """``Ready`` or the reason it is not, plus every other condition that is True."""
    by_type = {c["type"]: c for c in conds}
    ready = by_type.get("Ready")
    if ready is None:
        return "not reconciled yet"
    head = "Ready" if ready["status"] == "True" else f"NotReady({ready['reason']})"
    # Forecasting=True is the normal state: only the exceptional ones are worth a column.
    rest = [
        c["type"]
        for c in conds
        if c["status"] == "True" and c["type"] not in ("Ready", "Forecasting")
    ]
    return " ".join([head, *rest])


def read_status(kube: Kube, namespace: str | None) -> dict[str, Any]:
    """``{"policies": [...], "redisClusters": [...]}`` for one namespace (None: all)."""
    policies = []
    for obj in _list(kube, POLICIES, namespace):
        st = obj.get("status") or {}
        conds = _conditions(st)
        policies.append(
            {
                "namespace": obj["metadata"]["namespace"],
                "name": obj["metadata"]["name"],
                "observedGeneration": st.get("observedGeneration"),
                "generation": obj["metadata"].get("generation"),
                "lastPass": st.get("lastPass"),
                "targets": list(st.get("targets") or []),
                "plan": list(st.get("plan") or []),
                "lastActions": list(st.get("lastActions") or []),
                "forecast": st.get("forecast"),
                "conditions": conds,
                "summary": _summary(conds),
            }
        )
    clusters = []
    for obj in _list(kube, CLUSTERS, namespace):
        st = obj.get("status") or {}
        clusters.append(
            {
                "namespace": obj["metadata"]["namespace"],
                "name": obj["metadata"]["name"],
                "wantMasters": (obj.get("spec") or {}).get("masters"),
                "masters": st.get("masters", 0),
                "readyMasters": st.get("readyMasters", 0),
                "phase": st.get("phase", "Pending"),
                "slotsPerMaster": [row.get("slots") for row in st.get("slotsPerMaster") or ()],
                "migration": st.get("migration"),
                "conditions": _conditions(st),
            }
        )
    return {"policies": policies, "redisClusters": clusters}
