"""What ``headroom status`` shows, read from the objects' ``status`` the operator wrote.

One function, :func:`read_status`, shared by the CLI's table and its ``--json``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from headroom.controller.kube import GROUP, VERSION, Kube, call, not_found
from headroom.controller.operator.capacitypolicy import PLURAL as POLICIES
from headroom.controller.operator.specs import PLURAL as CLUSTERS
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


def _instant(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def next_actions(plan: list[dict[str, Any]], last_pass: Any) -> dict[str, dict[str, Any]]:
    """Each target's first planned order after the last pass (``plan`` is time order and
    starts with the pass's own order, already made): what comes next, by target."""
    after = _instant(last_pass) if last_pass else None
    out: dict[str, dict[str, Any]] = {}
    for row in plan:
        at = _instant(row.get("at"))
        if after is not None and (at is None or at <= after):
            continue
        out.setdefault(str(row.get("target")), row)
    return out


def read_status(kube: Kube, namespace: str | None) -> dict[str, Any]:
    """``{"policies": [...], "redisClusters": [...]}`` for one namespace (None: all)."""
    policies = []
    for obj in _list(kube, POLICIES, namespace):
        st = obj.get("status") or {}
        conds = _conditions(st)
        last_pass = (st.get("driver") or {}).get("lastTick")
        plan = list(st.get("plan") or [])
        upcoming = next_actions(plan, last_pass)
        targets = [
            {**t, "nextAction": upcoming.get(str(t.get("name")))} for t in st.get("targets") or ()
        ]
        policies.append(
            {
                "namespace": obj["metadata"]["namespace"],
                "name": obj["metadata"]["name"],
                "observedGeneration": st.get("observedGeneration"),
                "generation": obj["metadata"].get("generation"),
                "lastPass": last_pass,
                "targets": targets,
                "plan": plan,
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
