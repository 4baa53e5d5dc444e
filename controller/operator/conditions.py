"""Kubernetes-style status conditions and the one status write every reconciler uses.

A reconciler decides :class:`~headroom.controller.loop.Condition` values (the same type a
control-loop pass reports); :class:`StatusWriter` writes them, with the other status
fields, in one patch. :func:`route` is the kopf wiring every handler module shares.

A condition keeps its ``lastTransitionTime`` while its status stays the same, so
a status that did not change is byte-for-byte the same object and writing it is
a no-op for the API server (no new resourceVersion, no watch event).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any

from headroom.controller.kube import GROUP, VERSION, Kube, call, now_rfc3339
from headroom.controller.loop import Condition
from headroom.controller.metrics import OperatorMetrics

# How a reconciler reports a Kubernetes Event: record(body, type, reason, message).
EventRecorder = Callable[[Mapping[str, Any], str, str, str], None]


def no_events(body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """The recorder of a reconciler given none: its events are dropped."""


@dataclass(eq=False)
class Reconciler:
    """What the reconciler of every kind holds: the API it reads and writes, where its
    Kubernetes Events go, its metrics, and ``dry_run`` (change nothing but the status,
    which says what a pass would do)."""

    kube: Kube
    _: KW_ONLY
    record: EventRecorder = no_events
    metrics: OperatorMetrics | None = None
    dry_run: bool = False


def merge_conditions(
    old: Sequence[Mapping[str, Any]] | None, new: Iterable[Condition], generation: int
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


def object_key(body: Mapping[str, Any]) -> tuple[str, str]:
    """``(namespace, name)`` of a namespaced object's body."""
    meta = body["metadata"]
    return str(meta["namespace"]), str(meta["name"])


def observed(body: Mapping[str, Any]) -> tuple[str, str, str, int, dict[str, Any]]:
    """What a reconcile pass reads off its object first: namespace, name, uid,
    ``metadata.generation`` (0 when unset) and a copy of the status it writes once."""
    meta = body["metadata"]
    generation = int(meta.get("generation") or 0)
    return *object_key(body), str(meta["uid"]), generation, dict(body.get("status") or {})


def condition(status: Mapping[str, Any] | None, type_: str) -> Mapping[str, Any] | None:
    """The condition of ``type_`` in a status dict, if present."""
    for cond in (status or {}).get("conditions") or ():
        if cond.get("type") == type_:
            return dict(cond)
    return None


@dataclass(frozen=True)
class StatusWriter:
    """The status write of one kind: ``writer(ns, name, old, generation, fields, conds)``."""

    kube: Kube
    plural: str
    kind: str

    def __call__(
        self,
        ns: str,
        name: str,
        old: Mapping[str, Any],
        generation: int,
        fields: Mapping[str, Any],
        conds: Iterable[Condition],
    ) -> bool:
        """Patch ``status`` once with ``fields``, the conditions and ``observedGeneration``;
        skip the write (False) when nothing changed, so an idle pass causes no watch event."""
        new = {**fields, "observedGeneration": generation}
        new["conditions"] = merge_conditions(old.get("conditions"), conds, generation)
        if all(old.get(k) == v for k, v in new.items()):
            return False
        call(
            lambda: self.kube.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, ns, self.plural, name, {"status": new}
            ),
            f"write status of {self.kind} {ns}/{name}",
        )
        return True


Handler = Callable[..., None]


def route(
    registry: Any, plural: str, *, handle: Handler, timer: Handler, gone: Handler, interval: float
) -> None:
    """kopf: resume, create and a spec update run ``handle``; a timer every ``interval``
    seconds (first after one interval) runs ``timer``; a delete runs ``gone``."""
    import kopf

    on = {"registry": registry}
    kopf.on.resume(GROUP, VERSION, plural, **on)(handle)
    kopf.on.create(GROUP, VERSION, plural, **on)(handle)
    kopf.on.update(GROUP, VERSION, plural, field="spec", **on)(handle)
    kopf.timer(GROUP, VERSION, plural, interval=interval, initial_delay=interval, **on)(timer)
    kopf.on.delete(GROUP, VERSION, plural, optional=True, **on)(gone)
