"""The emulator's etcd: typed objects, one global resourceVersion, a bounded watch history.

The HTTP server (:mod:`tests.harness.apiserver`) maps requests onto these methods, and the
kubelet emulator calls them directly (with ``internal=True`` where a kubelet may write
what a client may not). Every method is thread-safe; objects go in and out as deep copies.
"""

from __future__ import annotations

import base64
import json
import pickle
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from tests.harness import errors
from tests.harness.errors import ApiError
from tests.harness.patch import APPLY, STRATEGIC, apply_patch
from tests.harness.resources import ResourceType, builtin_types, type_from_crd
from tests.harness.schema import FieldValidation, admit
from tests.harness.selectors import FieldMatcher, Requirement, labels_match, selector_to_string

Obj = dict[str, Any]
_T = TypeVar("_T")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"
CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
NS_KEY = ("", "namespaces")


def clone(obj: _T) -> _T:
    """A deep copy of a stored object (JSON data: dicts, lists, scalars). Pickle's round
    trip copies one in about a third of ``copy.deepcopy``'s time; the store copies every
    object it stores or hands out, and the kubelet lists pods many times a second."""
    copied: _T = pickle.loads(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL))
    return copied


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def path_get(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.strip(".").split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def path_set(obj: Obj, path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


@dataclass(frozen=True)
class Event:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    key: tuple[str, str]
    namespace: str
    obj: Obj
    old: Obj | None


IDLE: Obj = {"type": "IDLE"}  # not sent to clients; see Store._stream


def gone_status(requested: int, oldest: int) -> Obj:
    return errors.gone(f"too old resource version: {requested} ({oldest})").status()


class Store:
    """All objects of one emulated cluster."""

    def __init__(self, history_size: int = 2000) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._rv = 100
        self._types: dict[tuple[str, str], ResourceType] = {}
        self._objects: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {}
        self._history: deque[Event] = deque()
        self._history_size = history_size
        self.compacted_rv = self._rv
        for rt in builtin_types():
            self.register(rt)
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.create(self.type("", "namespaces"), "", {"metadata": {"name": ns}})

    # ---- types -----------------------------------------------------------------------
    def register(self, rt: ResourceType) -> None:
        with self.lock:
            self._types[rt.key] = rt
            self._objects.setdefault(rt.key, {})

    def types(self) -> list[ResourceType]:
        with self.lock:
            return list(self._types.values())

    def type(self, group: str, plural: str, version: str | None = None) -> ResourceType:
        with self.lock:
            rt = self._types.get((group, plural))
        if rt is None or (version is not None and version not in rt.versions):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        return rt

    def type_for_kind(self, api_version: str, kind: str) -> ResourceType:
        group, _, version = api_version.rpartition("/")
        with self.lock:
            for rt in self._types.values():
                if rt.group == group and rt.kind == kind and version in rt.versions:
                    return rt
        raise ApiError(
            404, "NotFound", f'no matches for kind "{kind}" in version "{api_version}"', {}
        )

    @property
    def resource_version(self) -> int:
        with self.lock:
            return self._rv

    # ---- reads -----------------------------------------------------------------------
    def get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        with self.lock:
            return clone(self._current(rt, ns, name))

    def try_get(self, rt: ResourceType, ns: str, name: str) -> Obj | None:
        with self.lock:
            obj = self._objects[rt.key].get((self._ns(rt, ns), name))
            return clone(obj) if obj is not None else None

    def list_objects(
        self,
        rt: ResourceType,
        ns: str | None,
        labels: list[Requirement] | None = None,
        fields: FieldMatcher | None = None,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> tuple[list[Obj], int, str | None]:
        """(items, resourceVersion, continue token) of the objects matching the selectors."""
        start_after: tuple[str, str] | None = None
        with self.lock:
            if continue_token:
                try:
                    token = json.loads(base64.b64decode(continue_token))
                    token_rv, start_after = int(token["rv"]), (token["ns"], token["name"])
                except (ValueError, KeyError, TypeError) as err:
                    raise errors.bad_request("continue key is not valid") from err
                if token_rv < self.compacted_rv:
                    raise errors.gone(
                        "The provided continue parameter is too old to display a consistent "
                        "list result. You can start a new list without the continue parameter."
                    )
            items = []
            for key in sorted(self._objects[rt.key]):
                if ns and rt.namespaced and key[0] != ns:
                    continue
                if start_after is not None and key <= start_after:
                    continue
                obj = self._objects[rt.key][key]
                if labels_match(labels or [], obj) and (fields is None or fields(obj)):
                    items.append(clone(obj))
            next_token = None
            if limit and len(items) > limit:
                items = items[:limit]
                last = items[-1]["metadata"]
                next_token = base64.b64encode(
                    json.dumps(
                        {"rv": self._rv, "ns": last.get("namespace", ""), "name": last["name"]}
                    ).encode()
                ).decode()
            return items, self._rv, next_token

    # ---- writes ----------------------------------------------------------------------
    def create(
        self,
        rt: ResourceType,
        ns: str,
        obj: Obj,
        *,
        internal: bool = False,
        validation: FieldValidation | None = None,
    ) -> Obj:
        with self.lock:
            obj = clone(obj)
            meta = obj.setdefault("metadata", {})
            if rt.namespaced:
                if meta.get("namespace") and ns and meta["namespace"] != ns:
                    raise errors.bad_request(
                        "the namespace of the provided object does not match the namespace "
                        "sent on the request"
                    )
                ns = ns or meta.get("namespace") or ""
                if not ns:
                    raise errors.bad_request("a namespace is required for this resource")
                if ("", ns) not in self._objects[NS_KEY]:
                    raise errors.not_found("", "namespaces", ns)
                meta["namespace"] = ns
            else:
                ns = ""
                meta.pop("namespace", None)
            name = meta.get("name")
            if not name and meta.get("generateName"):
                for _ in range(100):
                    name = meta["generateName"] + "".join(random.choices(_SUFFIX, k=5))
                    if (ns, name) not in self._objects[rt.key]:
                        break
                meta["name"] = name
            if not name:
                raise errors.invalid(
                    rt.group,
                    rt.kind,
                    "",
                    [
                        {
                            "reason": "FieldValueRequired",
                            "field": "metadata.name",
                            "message": "Required value: name or generateName is required",
                        }
                    ],
                )
            self._check_name(rt, name)
            if (ns, name) in self._objects[rt.key]:
                raise errors.already_exists(rt.group, rt.plural, name)
            obj["apiVersion"] = rt.api_version()
            obj["kind"] = rt.kind
            if rt.status and not internal and rt.key != CRD_KEY:
                obj.pop("status", None)
            for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
                meta.pop(k, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            meta["generation"] = 1
            self._on_create(rt, obj)
            obj = self._admit(rt, obj, validation)
            return self._commit(rt, None, obj)

    def update(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        obj: Obj,
        *,
        subresource: str | None = None,
        internal: bool = False,
        validation: FieldValidation | None = None,
    ) -> Obj:
        with self.lock:
            old = self._current(rt, ns, name)
            new = clone(obj)
            meta = new.setdefault("metadata", {})
            if meta.get("name", name) != name:
                raise errors.bad_request(
                    f"the name of the object ({meta['name']}) does not match the name on the "
                    f"URL ({name})"
                )
            sent_rv = meta.get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rt.group, rt.plural, name)
            if subresource == "status":
                merged = clone(old)
                if "status" in new:
                    merged["status"] = new["status"]
                else:
                    merged.pop("status", None)
            else:
                merged = new
                merged["apiVersion"], merged["kind"] = old["apiVersion"], old["kind"]
                if rt.status and not internal:
                    if "status" in old:
                        merged["status"] = clone(old["status"])
                    else:
                        merged.pop("status", None)
                old_meta = old["metadata"]
                for k in (
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "namespace",
                    "name",
                    "generation",
                    "deletionGracePeriodSeconds",
                ):
                    if k in old_meta:
                        meta[k] = old_meta[k]
                    else:
                        meta.pop(k, None)
            merged = self._admit(rt, merged, validation)
            return self._commit(rt, old, merged)

    def patch(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        content_type: str,
        body: Any,
        *,
        subresource: str | None = None,
        validation: FieldValidation | None = None,
    ) -> Obj:
        media = content_type.split(";")[0].strip().lower()
        if media == APPLY or (media == STRATEGIC and rt.custom):
            raise errors.unsupported_media_type(media)
        with self.lock:
            if subresource == "scale":
                scale = self._scale_of(rt, self._current(rt, ns, name))
                return self.update_scale(rt, ns, name, apply_patch(content_type, scale, body))
            old = clone(self._current(rt, ns, name))
            patched = apply_patch(content_type, old, body)
            patched.setdefault("metadata", {})
            if not patched["metadata"].get("resourceVersion"):
                patched["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return self.update(
                rt, ns, name, patched, subresource=subresource, validation=validation
            )

    def mutate(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        change: Callable[[Obj], None],
        *,
        subresource: str | None = None,
        internal: bool = True,
    ) -> Obj:
        """Read-modify-write under the lock (for in-process writers such as the kubelet)."""
        with self.lock:
            obj = clone(self._current(rt, ns, name))
            change(obj)
            return self.update(rt, ns, name, obj, subresource=subresource, internal=internal)

    def delete(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        *,
        precondition_rv: str | None = None,
        precondition_uid: str | None = None,
    ) -> tuple[Obj, bool]:
        """Delete (or mark for deletion while finalizers remain); returns (object, removed)."""
        with self.lock:
            old = self._current(rt, ns, name)
            meta = old["metadata"]
            if precondition_uid and precondition_uid != meta["uid"]:
                raise errors.ApiError(
                    409,
                    "Conflict",
                    f"Precondition failed: UID in precondition: "
                    f"{precondition_uid}, UID in object meta: {meta['uid']}",
                    {"name": name, "kind": rt.plural},
                )
            if precondition_rv and precondition_rv != meta["resourceVersion"]:
                raise errors.conflict(rt.group, rt.plural, name)
            if meta.get("finalizers"):
                if meta.get("deletionTimestamp"):
                    return clone(old), False
                new = clone(old)
                new["metadata"]["deletionTimestamp"] = now_rfc3339()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                return self._commit(rt, old, new), False
            return self._remove(rt, old), True

    # ---- /scale ----------------------------------------------------------------------
    def get_scale(self, rt: ResourceType, ns: str, name: str) -> Obj:
        with self.lock:
            return self._scale_of(rt, self._current(rt, ns, name))

    def update_scale(self, rt: ResourceType, ns: str, name: str, scale: Obj) -> Obj:
        assert rt.scale is not None
        with self.lock:
            old = self._current(rt, ns, name)
            sent_rv = (scale.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rt.group, rt.plural, name)
            replicas = (scale.get("spec") or {}).get("replicas", 0)
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise errors.invalid(
                    "autoscaling",
                    "Scale",
                    name,
                    [
                        {
                            "reason": "FieldValueInvalid",
                            "field": "spec.replicas",
                            "message": f"Invalid value: {json.dumps(replicas)}: must be greater "
                            "than or equal to 0",
                        }
                    ],
                )
            new = clone(old)
            path_set(new, rt.scale.spec_replicas_path, replicas)
            new = self._admit(rt, new)
            return self._scale_of(rt, self._commit(rt, old, new))

    # ---- watch -----------------------------------------------------------------------
    def watch(
        self,
        rt: ResourceType,
        ns: str | None,
        resource_version: str | None,
        labels: list[Requirement] | None = None,
        fields: FieldMatcher | None = None,
        *,
        timeout: float = 1800.0,
        bookmark_interval: float | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[Obj]:
        """Watch events as dicts ``{"type", "object"}``; ends at ``timeout`` or ``stop``."""
        stop = stop or threading.Event()

        def visible(obj: Obj | None) -> bool:
            if obj is None:
                return False
            if ns and rt.namespaced and obj["metadata"].get("namespace") != ns:
                return False
            return labels_match(labels or [], obj) and (fields is None or fields(obj))

        with self.lock:
            if resource_version in (None, "", "0"):
                last = self._rv
                current = sorted(self._objects[rt.key].items())
                initial = [{"type": "ADDED", "object": clone(o)} for _, o in current if visible(o)]
            else:
                try:
                    last = int(str(resource_version))
                except ValueError as err:
                    raise errors.bad_request(
                        f"invalid resource version {resource_version!r}"
                    ) from err
                initial = []
                if last < self.compacted_rv:
                    initial = [{"type": "ERROR", "object": gone_status(last, self.compacted_rv)}]
        return self._stream(rt, initial, last, visible, timeout, bookmark_interval, stop)

    def _stream(
        self,
        rt: ResourceType,
        initial: list[Obj],
        last: int,
        visible: Callable[[Obj | None], bool],
        timeout: float,
        bookmark_interval: float | None,
        stop: threading.Event,
    ) -> Iterator[Obj]:
        yield from initial
        if initial and initial[0]["type"] == "ERROR":
            return
        deadline = time.monotonic() + timeout
        idle = 0
        next_bookmark = time.monotonic() + (bookmark_interval or 0)
        while not stop.is_set():
            now = time.monotonic()
            if now >= deadline:
                return
            with self.changed:
                if last < self.compacted_rv and (
                    not self._history or self._history[0].rv > last + 1
                ):
                    pending: list[Obj] = [
                        {"type": "ERROR", "object": gone_status(last, self.compacted_rv)}
                    ]
                else:
                    pending = []
                    for ev in self._events_after(last):
                        last = ev.rv
                        out = self._filter_event(ev, rt, visible)
                        if out is not None:
                            pending.append(out)
                if not pending:
                    wait = min(deadline - now, 0.25)
                    if bookmark_interval:
                        wait = max(0.0, min(wait, next_bookmark - now))
                    self.changed.wait(wait)
            if not pending:
                idle += 1
                if idle % 8 == 0:
                    yield IDLE  # lets the server notice a client that went away
            idle = 0 if pending else idle
            for event in pending:
                yield event
                if event["type"] == "ERROR":
                    return
            if bookmark_interval and time.monotonic() >= next_bookmark:
                next_bookmark = time.monotonic() + bookmark_interval
                yield {
                    "type": "BOOKMARK",
                    "object": {
                        "kind": rt.kind,
                        "apiVersion": rt.api_version(),
                        "metadata": {"resourceVersion": str(last)},
                    },
                }

    def compact(self) -> int:
        """Forget the watch history (as etcd compaction does); returns the compacted RV."""
        with self.changed:
            self._history.clear()
            self.compacted_rv = self._rv
            self.changed.notify_all()
            return self._rv

    def wait_for_change(self, since: int, timeout: float) -> int:
        with self.changed:
            if self._rv == since:
                self.changed.wait(timeout)
            return self._rv

    def wake_watchers(self) -> None:
        with self.changed:
            self.changed.notify_all()

    # ---- internals -------------------------------------------------------------------
    def _ns(self, rt: ResourceType, ns: str | None) -> str:
        return (ns or "") if rt.namespaced else ""

    def _current(self, rt: ResourceType, ns: str, name: str) -> Obj:
        obj = self._objects[rt.key].get((self._ns(rt, ns), name))
        if obj is None:
            raise errors.not_found(rt.group, rt.plural, name)
        return obj

    def _check_name(self, rt: ResourceType, name: str) -> None:
        if len(name) <= 253 and _NAME.match(name):
            return
        raise errors.invalid(
            rt.group,
            rt.kind,
            name,
            [
                {
                    "reason": "FieldValueInvalid",
                    "field": "metadata.name",
                    "message": f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must '
                    "consist of lower case alphanumeric characters, '-' or '.', and must start and "
                    "end with an alphanumeric character",
                }
            ],
        )

    def _admit(self, rt: ResourceType, obj: Obj, validation: FieldValidation | None = None) -> Obj:
        if rt.custom:
            checking = validation is not None and validation.mode != "Ignore"
            unknown: list[str] | None = [] if checking else None
            obj, causes = admit(obj, rt.schemas.get(rt.versions[0]), unknown)
            if validation is not None and unknown:
                said = [f'unknown field "{path}"' for path in unknown]
                if validation.mode == "Strict":
                    raise errors.bad_request(
                        f'{rt.kind} in version "{rt.versions[0]}" cannot be handled as a '
                        f"{rt.kind}: strict decoding error: {', '.join(said)}"
                    )
                validation.warnings += said
            if causes:
                raise errors.invalid(rt.group, rt.kind, obj["metadata"].get("name", ""), causes)
        elif rt.key == CRD_KEY:
            name = obj["metadata"]["name"]
            spec = obj.get("spec") or {}
            expected = f"{(spec.get('names') or {}).get('plural')}.{spec.get('group')}"
            if name != expected:
                raise errors.invalid(
                    "apiextensions.k8s.io",
                    "CustomResourceDefinition",
                    name,
                    [
                        {
                            "reason": "FieldValueInvalid",
                            "field": "metadata.name",
                            "message": f'Invalid value: "{name}": must be spec.names.plural+"."+'
                            "spec.group",
                        }
                    ],
                )
        return obj

    def _on_create(self, rt: ResourceType, obj: Obj) -> None:
        if rt.group == "apps" and rt.plural in ("deployments", "statefulsets"):
            obj.setdefault("spec", {}).setdefault("replicas", 1)
        elif rt.key == ("", "pods"):
            obj.setdefault("status", {}).setdefault("phase", "Pending")
        elif rt.key == NS_KEY:
            obj["status"] = {"phase": "Active"}

    def _spec_view(self, rt: ResourceType, obj: Obj) -> Obj:
        skip = {"metadata", "apiVersion", "kind"}
        if rt.status or not rt.custom:
            skip.add("status")
        return {k: v for k, v in obj.items() if k not in skip}

    def _commit(self, rt: ResourceType, old: Obj | None, new: Obj) -> Obj:
        meta = new["metadata"]
        if old is not None:
            new_cmp = clone(new)
            new_cmp["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            if new_cmp == old:
                return clone(old)
            if self._spec_view(rt, old) != self._spec_view(rt, new):
                meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                return self._remove(rt, new)
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        ns = meta.get("namespace", "")
        self._objects[rt.key][(ns, meta["name"])] = new
        if rt.key == CRD_KEY:
            self._sync_crd(new)
        self._record("ADDED" if old is None else "MODIFIED", rt, new, old)
        return clone(new)

    def _remove(self, rt: ResourceType, obj: Obj) -> Obj:
        meta = obj["metadata"]
        ns = meta.get("namespace", "")
        old = self._objects[rt.key].pop((ns, meta["name"]))
        self._rv += 1
        gone = clone(obj)
        gone["metadata"]["resourceVersion"] = str(self._rv)
        self._record("DELETED", rt, gone, old)
        if rt.key == CRD_KEY:
            spec = obj["spec"]
            key = (spec["group"], spec["names"]["plural"])
            crt = self._types.pop(key, None)
            for inst in list(self._objects.pop(key, {}).values()):
                if crt is not None:
                    self._rv += 1
                    inst["metadata"]["resourceVersion"] = str(self._rv)
                    self._record("DELETED", crt, inst, inst)
        elif rt.key == NS_KEY:
            for key, objs in list(self._objects.items()):
                t = self._types.get(key)
                for (ons, _), inst in list(objs.items()):
                    if t is not None and t.namespaced and ons == meta["name"]:
                        self._remove(t, inst)
        self._collect_garbage(meta["uid"])
        return gone

    def _collect_garbage(self, owner_uid: str) -> None:
        """Background cascading deletion of objects whose only owner is gone."""
        for key, objs in list(self._objects.items()):
            t = self._types.get(key)
            if t is None:
                continue
            for inst in list(objs.values()):
                refs = inst["metadata"].get("ownerReferences") or []
                if refs and all(r.get("uid") == owner_uid for r in refs):
                    current = objs.get(
                        (inst["metadata"].get("namespace", ""), inst["metadata"]["name"])
                    )
                    if current is not None and not current["metadata"].get("deletionTimestamp"):
                        self.delete(
                            t, current["metadata"].get("namespace", ""), current["metadata"]["name"]
                        )

    def _sync_crd(self, crd: Obj) -> None:
        """A stored CRD becomes a servable type at once (Established), as on a real server."""
        crt = type_from_crd(crd)
        self.register(crt)
        names = crd["spec"]["names"]
        crd["status"] = {
            "acceptedNames": clone(names),
            "storedVersions": [crt.versions[0]],
            "conditions": [
                {
                    "type": t,
                    "status": "True",
                    "reason": r,
                    "message": m,
                    "lastTransitionTime": crd["metadata"]["creationTimestamp"],
                }
                for t, r, m in (
                    ("NamesAccepted", "NoConflicts", "no conflicts found"),
                    ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                )
            ],
        }

    def _record(self, type_: str, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        self._history.append(
            Event(
                self._rv,
                type_,
                rt.key,
                obj["metadata"].get("namespace", ""),
                clone(obj),
                clone(old) if old else None,
            )
        )
        while len(self._history) > self._history_size:
            self.compacted_rv = self._history.popleft().rv
        self.changed.notify_all()

    def _events_after(self, rv: int) -> list[Event]:
        out: list[Event] = []
        for ev in reversed(self._history):
            if ev.rv <= rv:
                break
            out.append(ev)
        out.reverse()
        return out

    @staticmethod
    def _filter_event(
        ev: Event, rt: ResourceType, visible: Callable[[Obj | None], bool]
    ) -> Obj | None:
        if ev.key != rt.key:
            return None
        now_in, was_in = visible(ev.obj), visible(ev.old)
        if ev.type == "DELETED":
            return {"type": "DELETED", "object": clone(ev.obj)} if was_in or now_in else None
        if ev.type == "ADDED":
            return {"type": "ADDED", "object": clone(ev.obj)} if now_in else None
        if now_in and was_in:
            return {"type": "MODIFIED", "object": clone(ev.obj)}
        if now_in:
            return {"type": "ADDED", "object": clone(ev.obj)}
        if was_in:
            return {"type": "DELETED", "object": clone(ev.obj)}
        return None

    def _scale_of(self, rt: ResourceType, obj: Obj) -> Obj:
        assert rt.scale is not None
        meta = obj["metadata"]
        if rt.scale.label_selector_path is None:
            selector = selector_to_string((obj.get("spec") or {}).get("selector"))
        elif rt.scale.label_selector_path:
            selector = path_get(obj, rt.scale.label_selector_path) or ""
        else:
            selector = ""
        status: Obj = {"replicas": path_get(obj, rt.scale.status_replicas_path) or 0}
        if selector:
            status["selector"] = selector
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": path_get(obj, rt.scale.spec_replicas_path) or 0},
            "status": status,
        }
