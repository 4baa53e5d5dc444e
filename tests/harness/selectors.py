"""Label and field selectors: parsing the query-string syntax and matching objects.

Used by the store for list and watch, and by the kubelet emulator to find its pods.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tests.harness.errors import bad_request

_REQ = re.compile(
    r"^\s*(?:(?P<not>!)\s*(?P<nkey>[^\s=!(),]+)"
    r"|(?P<key>[^\s=!(),]+)\s*(?:(?P<op>==|=|!=)\s*(?P<value>[^\s=!(),]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?)\s*$"
)


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.op:
            case "exists":
                return present
            case "!":
                return not present
            case "=" | "in":
                return present and value in self.values
            case _:  # "!=" and "notin" match objects without the label too
                return not present or value not in self.values


def _split_top(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def parse_label_selector(text: str | None) -> list[Requirement]:
    if not text:
        return []
    reqs: list[Requirement] = []
    for part in _split_top(text):
        m = _REQ.match(part)
        if not m:
            raise bad_request(f"unable to parse requirement: {part.strip()!r}")
        if m["nkey"]:
            reqs.append(Requirement(m["nkey"], "!"))
        elif m["op"]:
            op = "!=" if m["op"] == "!=" else "="
            reqs.append(Requirement(m["key"], op, (m["value"],)))
        elif m["setop"]:
            values = tuple(v.strip() for v in m["values"].split(",") if v.strip())
            reqs.append(Requirement(m["key"], m["setop"], values))
        else:
            reqs.append(Requirement(m["key"], "exists"))
    return reqs


def labels_match(reqs: list[Requirement], obj: Mapping[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


def selector_to_string(selector: Mapping[str, Any] | None) -> str:
    """``metav1.LabelSelector`` as the query-string form (what ``Scale.status.selector`` holds)."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr["operator"], expr["key"], expr.get("values") or []
        if op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            parts.append(f"{key} {op.lower()} ({','.join(sorted(values))})")
    return ",".join(parts)


def selector_matches(selector: Mapping[str, Any] | None, obj: Mapping[str, Any]) -> bool:
    """A ``metav1.LabelSelector`` matched against an object's labels (empty matches all)."""
    return labels_match(parse_label_selector(selector_to_string(selector)), obj)


# Fields the real server lets you select on, per resource (beyond metadata.name/namespace).
_EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": (
        "status.phase",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "events": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
        "regarding.kind",
        "regarding.name",
        "regarding.namespace",
    ),
    "secrets": ("type",),
}


def _lookup(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, Mapping):
        return str(cur.get("component", ""))  # events' "source" selects on its component
    return str(cur)


FieldMatcher = Callable[[Mapping[str, Any]], bool]


def parse_field_selector(text: str | None, plural: str) -> FieldMatcher:
    if not text:
        return lambda _obj: True
    allowed = {"metadata.name", "metadata.namespace", *_EXTRA_FIELDS.get(plural, ())}
    terms: list[tuple[str, bool, str]] = []
    for part in text.split(","):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise bad_request(f"invalid selector: {text!r}; can't understand {part!r}")
        field_, op, value = m.groups()
        if field_ not in allowed:
            raise bad_request(f"field label not supported: {field_}")
        terms.append((field_, op == "!=", value))

    def match(obj: Mapping[str, Any]) -> bool:
        return all((_lookup(obj, f) == v) != negate for f, negate, v in terms)

    return match
