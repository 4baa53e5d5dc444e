"""CRD structural schemas: pruning, defaulting and validation of custom resources.

Covers the OpenAPI v3 subset Headroom's CRDs use (type, properties, required, default,
minimum/maximum, enum, pattern, min/max length and items, items, additionalProperties,
nullable, x-kubernetes-preserve-unknown-fields, x-kubernetes-int-or-string, format
date-time). The store calls :func:`admit` on every write of a custom resource; the causes
it returns become a 422 ``Status`` worded like the real server's. The fields it prunes
are what ``fieldValidation`` reports (Strict: a 400, Warn: ``Warning`` headers).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Cause = dict[str, str]
ROOT_KEYS = ("apiVersion", "kind", "metadata")


def _fmt(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def prune(
    obj: Any,
    schema: dict[str, Any],
    root: bool = False,
    path: str = "",
    dropped: list[str] | None = None,
) -> Any:
    """Drop fields the schema does not know, as the real server does; their paths (``spec.a``,
    ``spec.items[0].b``) go to ``dropped``."""
    if isinstance(obj, dict) and schema.get("type", "object") == "object":
        if schema.get("x-kubernetes-preserve-unknown-fields") and not schema.get("properties"):
            return obj
        props: dict[str, Any] = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        out: dict[str, Any] = {}
        for key, value in obj.items():
            sub = f"{path}.{key}" if path else key
            if root and key in ROOT_KEYS:
                out[key] = value
            elif key in props:
                out[key] = prune(value, props[key], path=sub, dropped=dropped)
            elif isinstance(extra, dict):
                out[key] = prune(value, extra, path=sub, dropped=dropped)
            elif extra is True or schema.get("x-kubernetes-preserve-unknown-fields"):
                out[key] = value
            elif dropped is not None:
                dropped.append(sub)
        return out
    if isinstance(obj, list) and isinstance(schema.get("items"), dict):
        return [
            prune(v, schema["items"], path=f"{path}[{i}]", dropped=dropped)
            for i, v in enumerate(obj)
        ]
    return obj


def apply_defaults(obj: Any, schema: dict[str, Any]) -> Any:
    """Fill ``default`` values for absent fields whose parent object exists."""
    if isinstance(obj, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in obj and "default" in sub:
                obj[key] = copy.deepcopy(sub["default"])
            if key in obj:
                obj[key] = apply_defaults(obj[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in list(obj):
                if key not in (schema.get("properties") or {}):
                    obj[key] = apply_defaults(obj[key], extra)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(v, schema["items"]) for v in obj]
    return obj


def _type_ok(value: Any, type_: str) -> bool:
    match type_:
        case "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "string":
            return isinstance(value, str)
        case "boolean":
            return isinstance(value, bool)
        case "object":
            return isinstance(value, dict)
        case "array":
            return isinstance(value, list)
    return True


def _date_time_ok(value: str) -> bool:
    if not re.match(
        r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", value
    ):
        return False
    try:
        datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def validate(value: Any, schema: dict[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []

    def bad(reason: str, message: str) -> None:
        causes.append({"reason": reason, "message": message, "field": path})

    if value is None:
        if not schema.get("nullable"):
            bad(
                "FieldValueTypeInvalid",
                f'Invalid value: "null": {path} in body must be of type '
                f'{schema.get("type", "object")}: "null"',
            )
        return causes
    type_ = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if not (_type_ok(value, "integer") or isinstance(value, str)):
            bad(
                "FieldValueTypeInvalid",
                f"Invalid value: {_fmt(value)}: {path} in body must be of type integer or string",
            )
            return causes
    elif type_ and not _type_ok(value, type_):
        shown = type(value).__name__
        shown = {
            "str": "string",
            "int": "integer",
            "float": "number",
            "bool": "boolean",
            "dict": "object",
            "list": "array",
        }.get(shown, shown)
        bad(
            "FieldValueTypeInvalid",
            f'Invalid value: "{shown}": {path} in body must be of type {type_}: "{shown}"',
        )
        return causes
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_fmt(v) for v in schema["enum"])
        bad(
            "FieldValueNotSupported",
            f"Unsupported value: {_fmt(value)}: supported values: {supported}",
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema:
            lo = schema["minimum"]
            if value < lo or (schema.get("exclusiveMinimum") and value == lo):
                word = (
                    "greater than" if schema.get("exclusiveMinimum") else "greater than or equal to"
                )
                bad(
                    "FieldValueInvalid",
                    f"Invalid value: {_fmt(value)}: {path} in body should be {word} {_fmt(lo)}",
                )
        if "maximum" in schema:
            hi = schema["maximum"]
            if value > hi or (schema.get("exclusiveMaximum") and value == hi):
                word = "less than" if schema.get("exclusiveMaximum") else "less than or equal to"
                bad(
                    "FieldValueInvalid",
                    f"Invalid value: {_fmt(value)}: {path} in body should be {word} {_fmt(hi)}",
                )
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            bad(
                "FieldValueInvalid",
                f"Invalid value: {_fmt(value)}: {path} in body should match '{schema['pattern']}'",
            )
        if schema.get("format") == "date-time" and not _date_time_ok(value):
            bad(
                "FieldValueInvalid",
                f"Invalid value: {_fmt(value)}: {path} in body must be of "
                f"type date-time: {_fmt(value)}",
            )
        if "minLength" in schema and len(value) < schema["minLength"]:
            bad(
                "FieldValueInvalid",
                f"Invalid value: {_fmt(value)}: {path} in body should be "
                f"at least {schema['minLength']} chars long",
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            bad("FieldValueTooLong", f"Too long: may not be more than {schema['maxLength']} bytes")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            bad(
                "FieldValueInvalid",
                f"Invalid value: {len(value)}: {path} in body should have "
                f"at least {schema['minItems']} items",
            )
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            bad(
                "FieldValueTooMany",
                f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
            )
        if isinstance(schema.get("items"), dict):
            for i, item in enumerate(value):
                causes += validate(item, schema["items"], f"{path}[{i}]")
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties") or {}
        for req in schema.get("required") or []:
            if req not in value:
                causes.append(
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value",
                        "field": f"{path}.{req}" if path else req,
                    }
                )
        extra = schema.get("additionalProperties")
        for key, sub in value.items():
            sub_path = f"{path}.{key}" if path else key
            if key in props:
                causes += validate(sub, props[key], sub_path)
            elif isinstance(extra, dict):
                causes += validate(sub, extra, sub_path)
    return causes


# ObjectMeta's fields: anything else under metadata is an unknown field to the real server.
OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
FIELD_VALIDATION_MODES = ("Ignore", "Warn", "Strict")


@dataclass
class FieldValidation:
    """The ``fieldValidation`` directive of one write, and the warnings it produced."""

    mode: str = "Ignore"  # Ignore | Warn | Strict
    warnings: list[str] = field(default_factory=list)


def admit(
    obj: dict[str, Any], schema: dict[str, Any] | None, unknown: list[str] | None = None
) -> tuple[dict[str, Any], list[Cause]]:
    """Prune, default and validate one custom resource; returns (object, causes). The paths
    of pruned fields (and of unknown metadata fields, which are kept) go to ``unknown``."""
    if unknown is not None:
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            unknown += [f"metadata.{k}" for k in meta if k not in OBJECT_META_FIELDS]
    if not schema:
        return obj, []
    pruned = prune(copy.deepcopy(obj), schema, root=True, dropped=unknown)
    defaulted = apply_defaults(pruned, schema)
    body = {k: v for k, v in defaulted.items() if k not in ROOT_KEYS}
    sub_schema = dict(schema)
    sub_schema["properties"] = {
        k: v for k, v in (schema.get("properties") or {}).items() if k not in ROOT_KEYS
    }
    sub_schema["required"] = [r for r in schema.get("required") or [] if r not in ROOT_KEYS]
    return defaulted, validate(body, sub_schema, "")
