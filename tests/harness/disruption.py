"""PodDisruptionBudgets and the ``pods/eviction`` subresource, as kube-apiserver serves them.

Two halves of the real thing in one module:

- :func:`refresh_budgets` is the disruption controller: it writes each budget's status
  (``currentHealthy``, ``desiredHealthy``, ``expectedPods``, ``disruptionsAllowed``,
  ``observedGeneration``, the ``DisruptionAllowed`` condition). The kubelet emulator calls
  it on every pass.
- :func:`evict` is ``POST /api/v1/namespaces/{ns}/pods/{name}/eviction`` (a ``policy/v1``
  Eviction): it deletes the pod when its budget allows, spending one disruption in the same
  step, and answers 429 ``TooManyRequests`` ("Cannot evict pod as it would violate the pod's
  disruption budget.") when the budget is spent, as the real registry does. Pods that are
  not running (Pending, Succeeded, Failed) and pods already not Ready while the budget is
  met are deleted without spending it (``unhealthyPodEvictionPolicy: IfHealthyBudget``).

Both run under the store's lock, so an eviction never races the status it reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tests.harness import errors
from tests.harness.errors import ApiError
from tests.harness.selectors import selector_matches
from tests.harness.store import Obj, Store, now_rfc3339

POLICY = "policy"
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


def pod_ready(pod: Obj) -> bool:
    """Whether the pod's Ready condition is True."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def _scaled(value: Any, total: int, *, round_up: bool) -> int:
    """An IntOrString budget field against ``total`` pods ("50%" rounds up, as upstream)."""
    if isinstance(value, str) and value.endswith("%"):
        share = int(value[:-1]) * total / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(value)


def _matching_pods(store: Store, pdb: Obj) -> list[Obj]:
    selector = (pdb.get("spec") or {}).get("selector")
    if selector is None:
        return []  # policy/v1: a null selector matches no pod, {} every pod
    pods = store.list_objects(store.type("", "pods"), pdb["metadata"]["namespace"])[0]
    return [p for p in pods if selector_matches(selector, p)]


def _expected(store: Store, pods: list[Obj]) -> int:
    """The scale of the pods' controllers (the real controller reads their /scale)."""
    total, counted, bare = 0, set(), 0
    for pod in pods:
        owner = next(
            (r for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")),
            None,
        )
        if owner is None or owner.get("kind") not in ("StatefulSet", "ReplicaSet", "Deployment"):
            bare += 1
            continue
        if owner["uid"] in counted:
            continue
        counted.add(owner["uid"])
        plural = "statefulsets" if owner["kind"] == "StatefulSet" else "deployments"
        obj = store.try_get(store.type("apps", plural), pod["metadata"]["namespace"], owner["name"])
        total += int(((obj or {}).get("spec") or {}).get("replicas", 1))
    return total + bare


def budget_status(store: Store, pdb: Obj) -> Obj:
    """The status the disruption controller computes for one budget now."""
    spec = pdb.get("spec") or {}
    pods = [p for p in _matching_pods(store, pdb) if not p["metadata"].get("deletionTimestamp")]
    old = pdb.get("status") or {}
    # No disruptedPods bookkeeping: an evicted pod is deleted in the same locked step here
    # (no graceful termination), so it is never counted healthy after its eviction.
    healthy = sum(1 for p in pods if pod_ready(p))
    if "minAvailable" in spec and not isinstance(spec["minAvailable"], str):
        expected = len(pods)
        desired = int(spec["minAvailable"])
    elif "minAvailable" in spec:
        expected = _expected(store, pods)
        desired = _scaled(spec["minAvailable"], expected, round_up=True)
    else:
        expected = _expected(store, pods)
        desired = max(0, expected - _scaled(spec.get("maxUnavailable", 0), expected, round_up=True))
    allowed = max(0, healthy - desired)
    reason = "SufficientPods" if allowed > 0 else "InsufficientPods"
    cond_status = "True" if allowed > 0 else "False"
    old_cond = next(
        (c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None
    )
    cond = {
        "type": "DisruptionAllowed",
        "status": cond_status,
        "reason": reason,
        "message": "",
        "observedGeneration": pdb["metadata"].get("generation", 1),
        "lastTransitionTime": (
            old_cond["lastTransitionTime"]
            if old_cond and old_cond.get("status") == cond_status
            else now_rfc3339()
        ),
    }
    status: Obj = {
        "observedGeneration": pdb["metadata"].get("generation", 1),
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "disruptionsAllowed": allowed,
        "conditions": [cond],
    }
    return status


def refresh_budgets(store: Store) -> None:
    """The disruption controller's pass: every budget's status brought up to date."""
    rt = store.type(POLICY, "poddisruptionbudgets")
    with store.lock:
        for pdb in store.list_objects(rt, None)[0]:
            status = budget_status(store, pdb)
            if status == pdb.get("status"):
                continue
            ns, name = pdb["metadata"]["namespace"], pdb["metadata"]["name"]
            store.mutate(rt, ns, name, _set_status(status), subresource="status")


def _set_status(status: Obj) -> Callable[[Obj], None]:
    def change(obj: Obj) -> None:
        obj["status"] = status

    return change


def _too_many(pdb: Obj, message: str) -> ApiError:
    return ApiError(
        429,
        "TooManyRequests",
        VIOLATION,
        {"causes": [{"reason": "DisruptionBudget", "message": message}]},
    )


def evict(store: Store, ns: str, name: str, body: Any) -> Obj:
    """Serve one Eviction of pod ``ns/name``; returns the Success Status (HTTP 201)."""
    if not isinstance(body, dict) or body.get("kind", "Eviction") != "Eviction":
        raise errors.bad_request("the request body is not an Eviction")
    meta = body.get("metadata") or {}
    if meta.get("name", name) != name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    pods_rt = store.type("", "pods")
    pdb_rt = store.type(POLICY, "poddisruptionbudgets")
    with store.lock:
        pod = store.try_get(pods_rt, ns, name)
        if pod is None:
            raise errors.not_found("", "pods", name)
        phase = (pod.get("status") or {}).get("phase", "Pending")
        if phase in ("Succeeded", "Failed", "Pending") or pod["metadata"].get("deletionTimestamp"):
            store.delete(pods_rt, ns, name)
            return _success()
        budgets = [
            p
            for p in store.list_objects(pdb_rt, ns)[0]
            if (p.get("spec") or {}).get("selector") is not None
            and selector_matches(p["spec"]["selector"], pod)
        ]
        if len(budgets) > 1:
            raise ApiError(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, which the eviction "
                "subresource does not support.",
            )
        if budgets:
            pdb = budgets[0]
            status = budget_status(store, pdb)
            pdb_name = pdb["metadata"]["name"]
            if not pod_ready(pod) and status["currentHealthy"] >= status["desiredHealthy"]:
                store.delete(pods_rt, ns, name)  # already down; the budget is met without it
                return _success()
            if status["disruptionsAllowed"] <= 0:
                raise _too_many(
                    pdb,
                    f"The disruption budget {pdb_name} needs {status['desiredHealthy']} healthy "
                    f"pods and has {status['currentHealthy']} currently",
                )
            status["disruptionsAllowed"] -= 1
            store.mutate(
                pdb_rt,
                ns,
                pdb_name,
                lambda o: o.__setitem__("status", status),
                subresource="status",
            )
        store.delete(pods_rt, ns, name)
        return _success()


def _success() -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
