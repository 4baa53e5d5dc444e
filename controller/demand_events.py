"""DemandEvents in a cluster: reading them (the operator's calendar, ``plan
--from-cluster``), the calendar import and the surge button.

``headroom calendar import`` and ``headroom surge`` (``cli/kube_events.py``) call these
with a :class:`~headroom.controller.kube.Kube`; the objects themselves come from the pure
builders in :mod:`headroom.policies.resources`. The import is idempotent: it reads the
namespace's DemandEvents once, compares each wanted object's spec and labels with what is
stored, and writes only what differs (running it twice changes nothing, resourceVersions
included). Everything is planned before the first write, so a name taken by an object
the import does not manage stops it with nothing applied.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from headroom.controller.kube import GROUP, VERSION, Kube, call, not_found
from headroom.controller.surge import Surge
from headroom.policies.calendars import event_to_resource
from headroom.policies.errors import InputError, KubernetesError, PolicyError
from headroom.policies.jsonable import fields_json
from headroom.policies.resources import (
    CALENDAR_LABEL,
    IMPORTED_BY,
    MANAGED_BY_LABEL,
    POLICY_LABEL,
    SURGED_BY,
    EventRead,
    describe_object,
    label_value,
    policy_from_resource,
    read_demand_events,
)

log = logging.getLogger(__name__)

EVENTS = "demandevents"
POLICIES = "capacitypolicies"


class ImportConflict(InputError):
    """A wanted DemandEvent name is taken by an object the import does not manage."""


@dataclass
class ImportReport:
    """What an import did (or, with ``dry_run``, would do), by object name."""

    namespace: str
    calendar: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)

    def as_json(self) -> dict[str, Any]:
        names = ("namespace", "calendar", "dry_run", "created", "updated", "unchanged")
        return fields_json(self, *names, "deleted")


def _same(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    labels = (stored.get("metadata") or {}).get("labels") or {}
    wanted_labels = wanted["metadata"]["labels"]
    return stored.get("spec") == wanted["spec"] and all(
        labels.get(k) == v for k, v in wanted_labels.items()
    )


def list_events(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    """Every DemandEvent object in ``namespace``."""
    listed = call(
        lambda: kube.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, EVENTS),
        f"list DemandEvents in {namespace}",
    )
    return list(listed.get("items") or [])


def list_demand_events(kube: Kube, namespace: str) -> EventRead:
    """Every DemandEvent of ``namespace`` as events; a bad one is skipped, logged and
    returned (it must not hide the others)."""
    read = read_demand_events(list_events(kube, namespace), namespace=namespace)
    for err in read.errors:
        log.warning("Skipped DemandEvent error=%s", err)
    return read


def import_events(
    kube: Kube,
    wanted: Sequence[dict[str, Any]],
    *,
    namespace: str,
    calendar: str,
    prune: bool = False,
    dry_run: bool = False,
) -> ImportReport:
    """Create or update ``wanted`` (from :func:`~headroom.policies.resources.imported_resources`)
    in ``namespace``; with ``prune`` delete the DemandEvents this calendar's import manages
    that are not wanted any more. Raises :class:`ImportConflict` before any write."""
    report = ImportReport(namespace, calendar, dry_run=dry_run)
    stored = {o["metadata"]["name"]: o for o in list_events(kube, namespace)}
    mine = label_value(calendar)
    for obj in wanted:
        name = obj["metadata"]["name"]
        have = stored.get(name)
        if have is None:
            continue
        labels = (have.get("metadata") or {}).get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) != IMPORTED_BY or labels.get(CALENDAR_LABEL) != mine:
            raise ImportConflict(
                f"{describe_object(have, 'DemandEvent')}: exists and is not managed by the "
                f"import of calendar {mine!r}; nothing was applied"
            )
    for obj in wanted:
        name = obj["metadata"]["name"]
        have = stored.get(name)
        if have is None:
            report.created.append(name)
            if not dry_run:
                call(
                    partial(
                        kube.custom.create_namespaced_custom_object,
                        GROUP,
                        VERSION,
                        namespace,
                        EVENTS,
                        obj,
                    ),
                    f"create DemandEvent {namespace}/{name}",
                )
        elif _same(have, obj):
            report.unchanged.append(name)
        else:
            report.updated.append(name)
            if not dry_run:
                body = {
                    **obj,
                    "metadata": {
                        **obj["metadata"],
                        "labels": {
                            **(have["metadata"].get("labels") or {}),
                            **obj["metadata"]["labels"],
                        },
                        "resourceVersion": have["metadata"].get("resourceVersion"),
                    },
                }
                call(
                    partial(
                        kube.custom.replace_namespaced_custom_object,
                        GROUP,
                        VERSION,
                        namespace,
                        EVENTS,
                        name,
                        body,
                    ),
                    f"update DemandEvent {namespace}/{name}",
                )
    if prune:
        keep = {o["metadata"]["name"] for o in wanted}
        for name, have in sorted(stored.items()):
            labels = (have.get("metadata") or {}).get("labels") or {}
            managed = labels.get(MANAGED_BY_LABEL) == IMPORTED_BY
            if managed and labels.get(CALENDAR_LABEL) == mine and name not in keep:
                report.deleted.append(name)
                if not dry_run:
                    _delete(kube, namespace, name)
    return report


def _delete(kube: Kube, namespace: str, name: str) -> None:
    try:
        call(
            lambda: kube.custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, EVENTS, name
            ),
            f"delete DemandEvent {namespace}/{name}",
        )
    except KubernetesError as err:
        if not not_found(err):  # already gone: what we wanted
            raise


def create_event(kube: Kube, obj: dict[str, Any]) -> dict[str, Any]:
    """Create one DemandEvent (a surge); returns the stored object."""
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    stored: dict[str, Any] = call(
        lambda: kube.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, EVENTS, obj),
        f"create DemandEvent {namespace}/{name}",
    )
    return stored


def policies_for_target(
    kube: Kube, namespace: str, target: str, policy: str | None = None
) -> list[str]:
    """Names of the CapacityPolicies in ``namespace`` sizing ``target`` (``name`` or
    ``Kind/name``); with ``policy`` only that one, which must size it. A policy whose spec
    does not validate is skipped (its own status says why)."""
    listed = call(
        lambda: kube.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, POLICIES),
        f"list CapacityPolicies in {namespace}",
    )
    kind, _, name = target.rpartition("/")
    found: list[str] = []
    for obj in listed.get("items") or []:
        meta = obj.get("metadata") or {}
        if policy is not None and meta.get("name") != policy:
            continue
        try:
            spec = policy_from_resource(obj)
        except PolicyError:
            continue
        for t in spec.targets:
            if t.name == name and (not kind or t.kind.value.lower() == kind.lower()):
                found.append(str(meta.get("name")))
                break
    return found


class DemandEventSurges:
    """The operator's :class:`~headroom.controller.surge.SurgeEvents`: a surge is a
    DemandEvent object in its policy's namespace, named after the alert's key, so a
    re-sent alert renews it (factor, end) and a resolved one ends it early (its ``end``
    moves to the resolve time; the object stays, as a record of what happened).
    ``namespace_of`` tells a policy's namespace (None: the operator does not know it),
    ``namespaces`` every namespace it runs policies in."""

    def __init__(
        self,
        kube: Kube,
        namespace_of: Callable[[str], str | None],
        namespaces: Callable[[], Iterable[str]],
    ) -> None:
        self.kube = kube
        self.namespace_of = namespace_of
        self.namespaces = namespaces

    @staticmethod
    def object_name(key: str) -> str:
        return "surge-" + "".join(c for c in key.lower() if c.isalnum())[:40]

    def start_surge(self, surge: Surge) -> None:
        namespace = surge.namespace or self.namespace_of(surge.policy)
        if namespace is None:
            raise InputError(f"surge: policy {surge.policy!r} is not one the operator runs")
        name = self.object_name(surge.key)
        obj = event_to_resource(surge.event(), name, namespace)
        obj["metadata"]["labels"] = {MANAGED_BY_LABEL: SURGED_BY}
        obj["spec"]["policySelector"] = {"matchLabels": {POLICY_LABEL: surge.policy}}
        obj["spec"].pop("selector", None)
        try:
            create_event(self.kube, obj)
        except KubernetesError as err:
            if getattr(err, "status", None) != 409:
                raise
            call(
                lambda: self.kube.custom.patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, EVENTS, name, {"spec": obj["spec"]}
                ),
                f"renew DemandEvent {namespace}/{name}",
            )

    def end_surge(
        self, key: str, at: float, *, policy: str | None = None, namespace: str | None = None
    ) -> bool:
        """End the surge DemandEvent ``key`` in ``namespace`` (else: where ``policy`` runs,
        else every namespace), but only one this receiver made (managed-by label) for
        ``policy`` (its policySelector): another team's object of the same name stays."""
        name = self.object_name(key)
        if namespace is None and policy is not None:
            namespace = self.namespace_of(policy)
        spaces = [namespace] if namespace is not None else sorted(set(self.namespaces()))
        for namespace in spaces:
            try:
                obj = call(
                    partial(
                        self.kube.custom.get_namespaced_custom_object,
                        GROUP, VERSION, namespace, EVENTS, name,
                    ),
                    f"read DemandEvent {namespace}/{name}",
                )  # fmt: skip
            except KubernetesError as err:
                if not_found(err):
                    continue
                raise
            labels = (obj.get("metadata") or {}).get("labels") or {}
            selector = ((obj.get("spec") or {}).get("policySelector") or {}).get("matchLabels")
            if labels.get(MANAGED_BY_LABEL) != SURGED_BY or (
                policy is not None and (selector or {}).get(POLICY_LABEL) != policy
            ):
                continue  # not a surge this receiver made for this policy
            start = obj["spec"].get("start")
            end = datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if isinstance(start, str) and end <= start:
                end = start  # ended before it began: the controller skips a zero-length one
            call(
                partial(
                    self.kube.custom.patch_namespaced_custom_object,
                    GROUP, VERSION, namespace, EVENTS, name, {"spec": {"end": end}},
                ),
                f"end DemandEvent {namespace}/{name}",
            )  # fmt: skip
            return True
        return False
