"""Kubernetes-style status conditions and the one status write every reconciler uses.

A condition keeps its ``lastTransitionTime`` while its status stays the same, so
a status that did not change is byte-for-byte the same object and writing it is
a no-op for the API server (no new resourceVersion, no watch event).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from headroom.controller.kube import GROUP, VERSION, Kube, call, now_rfc3339


@dataclass(frozen=True)
class Cond:
    """One condition as a reconciler decides it (time and generation are added on write)."""

    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str  # CamelCase
    message: str = ""


def merge_conditions(
    old: Sequence[Mapping[str, Any]] | None, new: Iterable[Cond], generation: int
) -> list[dict[str, Any]]:
    """The new conditions, keeping each one's transition time when its status did not change."""
    before = {str(c.get("type")): c for c in old or ()}
    out: list[dict[str, Any]] = []
    for cond in new:
        prev = before.get(cond.type)
        since = (
            str(prev["lastTransitionTime"])
            if prev and prev.get("status") == cond.status and prev.get("lastTransitionTime")
            else now_rfc3339()
        )
        out.append(
            {
                "type": cond.type,
                "status": cond.status,
                "reason": cond.reason,
                "message": cond.message,
                "lastTransitionTime": since,
                "observedGeneration": generation,
            }
        )
    return out


def condition(status: Mapping[str, Any] | None, type_: str) -> Mapping[str, Any] | None:
    """The condition of ``type_`` in a status dict, if present."""
    for cond in (status or {}).get("conditions") or ():
        if cond.get("type") == type_:
            return dict(cond)
    return None


def write_status(
    kube: Kube,
    plural: str,
    kind: str,
    ns: str,
    name: str,
    old: Mapping[str, Any],
    generation: int,
    fields: Mapping[str, Any],
    conds: Iterable[Cond],
) -> bool:
    """Patch ``status`` once with ``fields``, the conditions and ``observedGeneration``;
    skip the write (False) when nothing changed, so an idle pass causes no watch event."""
    new = {**fields, "observedGeneration": generation}
    new["conditions"] = merge_conditions(old.get("conditions"), conds, generation)
    if all(old.get(k) == v for k, v in new.items()):
        return False
    call(
        lambda: kube.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, ns, plural, name, {"status": new}
        ),
        f"write status of {kind} {ns}/{name}",
    )
    return True
