"""``meta.k8s.io/v1`` Table responses, the format ``kubectl get`` asks for.

``kubectl get`` sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints
the server's columns. Custom resources get the CRD's ``additionalPrinterColumns`` after
``Name`` (``date`` columns as ages, missing values as null, as the real table convertor
does); a few built-in kinds get the columns of the real server's printers; any other kind
gets ``Name`` and ``Age``, and CRDs ``Name`` and ``Created At``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.harness.resources import ResourceType

Obj = dict[str, Any]
Cell = Any
Column = tuple[str, str, str, int]  # name, type, format, priority
_NAME_DOC = "Name must be unique within a namespace."
_AGE_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created."
)


def wants_table(accept: str | None) -> str | None:
    """The Table version (``v1``/``v1beta1``) the Accept header asks for first, if any."""
    for media in (accept or "").split(","):
        params = dict(p.strip().split("=", 1) for p in media.split(";")[1:] if "=" in p)
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return params.get("v", "v1")
    return None


def human_duration(seconds: float) -> str:
    """An age as kubectl shows it: 45s, 3m20s, 2h5m, 3d4h, 2y30d."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{days // 365}y"


def age(timestamp: Any) -> str:
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    return human_duration((datetime.now(UTC) - then).total_seconds())


_STEP = re.compile(
    r"\.([A-Za-z0-9_-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_.-]+)\s*==\s*[\"']([^\"']*)[\"']\)\]"
)


def json_path(obj: Any, path: str) -> Any:
    """The value at a printer column's simple JSONPath (``.a.b``, ``[0]``,
    ``[?(@.type=="Ready")]``), or None."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    cur = obj
    pos = 0
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:
            return None
        pos = m.end()
        key, index, fkey, fval = m.groups()
        if key is not None:
            cur = cur.get(key) if isinstance(cur, dict) else None
        elif index is not None:
            cur = cur[int(index)] if isinstance(cur, list) and int(index) < len(cur) else None
        else:
            matches = [
                item
                for item in (cur if isinstance(cur, list) else [])
                if str(json_path(item, "." + fkey)) == fval
            ]
            cur = matches[0] if matches else None
        if cur is None:
            return None
    return cur


def _cell(type_: str, value: Any) -> Cell:
    if value is None:
        return None
    if type_ == "integer":
        return (
            int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )
    if type_ == "number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if type_ == "boolean":
        return value if isinstance(value, bool) else None
    if type_ == "date":
        return age(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value).lower() if isinstance(value, bool) else str(value)


def _event_cells(obj: Obj) -> list[Cell]:
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    last = (
        obj.get("lastTimestamp")
        or obj.get("deprecatedLastTimestamp")
        or obj.get("eventTime")
        or obj["metadata"].get("creationTimestamp")
    )
    kind = str(involved.get("kind", "")).lower()
    return [
        age(last),
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{kind}/{involved.get('name', '')}",
        obj.get("message", obj.get("note", "")),
        obj["metadata"]["name"],
    ]


def _pod_cells(obj: Obj) -> list[Cell]:
    status = obj.get("status") or {}
    containers = (obj.get("spec") or {}).get("containers") or []
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    phase = status.get("reason") or status.get("phase") or ""
    if obj["metadata"].get("deletionTimestamp"):
        phase = "Terminating"
    return [
        obj["metadata"]["name"],
        f"{ready}/{len(containers)}",
        phase,
        restarts,
        age(obj["metadata"].get("creationTimestamp")),
        status.get("podIP") or "<none>",
    ]


def _workload_cells(obj: Obj) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        obj["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        age(obj["metadata"].get("creationTimestamp")),
    ]


def _namespace_cells(obj: Obj) -> list[Cell]:
    return [
        obj["metadata"]["name"],
        (obj.get("status") or {}).get("phase", ""),
        age(obj["metadata"].get("creationTimestamp")),
    ]


def _crd_cells(obj: Obj) -> list[Cell]:
    return [obj["metadata"]["name"], obj["metadata"].get("creationTimestamp")]


def _default_cells(obj: Obj) -> list[Cell]:
    return [obj["metadata"]["name"], age(obj["metadata"].get("creationTimestamp"))]


_NAME: Column = ("Name", "string", "name", 0)
_AGE: Column = ("Age", "string", "", 0)
_PRINTERS: dict[tuple[str, str], tuple[list[Column], Callable[[Obj], list[Cell]]]] = {
    ("", "events"): (
        [
            ("Last Seen", "string", "", 0),
            ("Type", "string", "", 0),
            ("Reason", "string", "", 0),
            ("Object", "string", "", 0),
            ("Message", "string", "", 0),
            ("Name", "string", "name", 1),
        ],
        _event_cells,
    ),
    ("", "pods"): (
        [
            _NAME,
            ("Ready", "string", "", 0),
            ("Status", "string", "", 0),
            ("Restarts", "string", "", 0),
            _AGE,
            ("IP", "string", "", 1),
        ],
        _pod_cells,
    ),
    ("apps", "statefulsets"): ([_NAME, ("Ready", "string", "", 0), _AGE], _workload_cells),
    ("apps", "deployments"): ([_NAME, ("Ready", "string", "", 0), _AGE], _workload_cells),
    ("", "namespaces"): ([_NAME, ("Status", "string", "", 0), _AGE], _namespace_cells),
    ("apiextensions.k8s.io", "customresourcedefinitions"): (
        [_NAME, ("Created At", "date", "", 0)],
        _crd_cells,
    ),
}
_PRINTERS[("events.k8s.io", "events")] = _PRINTERS[("", "events")]


def _definition(column: Column, description: str = "") -> Obj:
    name, type_, fmt, priority = column
    if not description:
        description = {"Name": _NAME_DOC, "Age": _AGE_DOC, "Created At": _AGE_DOC}.get(name, "")
    return {
        "name": name,
        "type": type_,
        "format": fmt,
        "description": description,
        "priority": priority,
    }


def _columns(rt: ResourceType, version: str) -> tuple[list[Obj], Callable[[Obj], list[Cell]]]:
    if rt.custom:
        extra = rt.printer_columns.get(version, ())
        defs = [_definition(_NAME)] + [
            _definition(
                (c["name"], c["type"], c.get("format", ""), int(c.get("priority", 0))),
                c.get("description", ""),
            )
            for c in extra
        ]
        if not extra:  # a CRD without columns shows its age, as the real server does
            defs.append(_definition(("Age", "date", "", 0)))

        def cells(obj: Obj) -> list[Cell]:
            if not extra:
                return [obj["metadata"]["name"], age(obj["metadata"].get("creationTimestamp"))]
            return [obj["metadata"]["name"]] + [
                _cell(c["type"], json_path(obj, c["jsonPath"])) for c in extra
            ]

        return defs, cells
    columns, fn = _PRINTERS.get(rt.key, ([_NAME, _AGE], _default_cells))
    return [_definition(c) for c in columns], fn


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def to_table(
    rt: ResourceType,
    version: str,
    items: list[Obj],
    *,
    resource_version: str,
    table_version: str = "v1",
    include_object: str = "Metadata",
    continue_token: str | None = None,
) -> Obj:
    """A Table of ``items`` (a list response, or one object for a get)."""
    defs, cells = _columns(rt, version)
    rows = []
    for obj in items:
        row: Obj = {"cells": cells(obj)}
        inner = _row_object(obj, include_object)
        if inner is not None:
            row["object"] = inner
        rows.append(row)
    meta: Obj = {"resourceVersion": resource_version}
    if continue_token:
        meta["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{table_version}",
        "metadata": meta,
        "columnDefinitions": defs,
        "rows": rows,
    }
