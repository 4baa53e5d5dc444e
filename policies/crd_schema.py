"""Structural OpenAPI v3 schemas of the CRDs, generated from the pydantic models.

The chart's CapacityPolicy and DemandEvent CRDs (``charts/headroom/templates/crd/``) carry
these schemas, so the cluster checks a resource with the same fields, types and bounds as
``headroom policy validate`` / ``headroom calendar validate``: one model, not two.
``tests/support/crd_templates.py`` writes the chart's files from here (``make crds``) and
``tests/chart/test_crds.py`` fails when they drift, e.g. after a field was added to
:class:`~headroom.policies.policy.PolicySpec`.

The generator walks the models' fields (not pydantic's JSON Schema, whose ``anyOf`` and
``$ref`` a structural schema may not use):

- ``str``/``int``/``float``/``bool``, ``StrEnum`` (an ``enum``), ``datetime`` (format
  date-time), ``list``, ``dict[str, V]`` (``additionalProperties``), nested models
  (objects) and ``X | None`` (``nullable``); ``gt``/``ge``/``lt``/``le``, lengths and
  ``pattern`` become the schema's bounds;
- a field parsed by one of Headroom's own validators (durations, sizes, scale-in steps)
  has that validator's wire form (:data:`WIRE_FORMS`: integer or string, with a pattern);
- anything else (``Any``, a union of two models) must be given an override, or the
  generator refuses with :class:`SchemaError` naming the field.

Defaults are not copied into the schema (the model owns them, and a stored resource
stays as its author wrote it); they are written into each field's description, as are
the source comments next to the fields. Pure: no I/O beyond reading the models' source
for those comments. Called by the chart generator and its test, never at run time.
"""

from __future__ import annotations

import enum
import inspect
import io
import re
import textwrap
import tokenize
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, AliasChoices, BaseModel, BeforeValidator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from headroom.policies.calendars._event import EventSpec
from headroom.policies.errors import HeadroomError
from headroom.policies.plugins import EMBEDDED_TARGET_KINDS
from headroom.policies.policy import PolicySpec, TargetKind
from headroom.policies.quantities import (
    DURATION_HINT,
    SIZE_HINT,
    STEP_HINT,
    parse_bytes,
    parse_duration,
    parse_step,
)
from headroom.policies.validation import as_label

Schema = dict[str, Any]
Override = Callable[[Schema], Schema]


class SchemaError(HeadroomError):
    """A model field has no structural-schema form (give the generator an override)."""


def _int_or_string(pattern: str, hint: str) -> Schema:
    return {
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": pattern,
        "description": hint[:1].upper() + hint[1:] + ".",
    }


# Headroom's own validators -> the schema of what they accept on the wire. A structural
# schema has no "number or string", so fractions of a second or a byte are written as
# strings ("1.5s", "1.5Gi"); the integer form is bounded by the model (minimum).
WIRE_FORMS: dict[Callable[..., Any], Schema] = {
    parse_duration: {
        **_int_or_string(r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w)?\s*$", DURATION_HINT),
        "minimum": 0,
    },
    parse_bytes: _int_or_string(
        r"^\s*\d+(\.\d+)?([eE][+-]?\d+)?\s*([KMGTP]i|[kKMGTP])?B?\s*(/s)?\s*$", SIZE_HINT
    ),
    parse_step: {**_int_or_string(r"^\s*(\d+|\d+(\.\d+)?\s*%)\s*$", STEP_HINT), "minimum": 1},
    as_label: {"type": "string"},  # labels are strings on the wire
}
_STRING_CHECKS = ("_instant",)  # AfterValidators on a str: the string form stays


def _alias(name: str, info: FieldInfo) -> str:
    choice = info.validation_alias
    if isinstance(choice, AliasChoices) and isinstance(choice.choices[0], str):
        return choice.choices[0]  # the CRD spelling comes first
    if isinstance(choice, str):
        return choice
    return info.alias or name


def _other_spellings(info: FieldInfo) -> list[str]:
    choice = info.validation_alias
    if isinstance(choice, AliasChoices):
        return [c for c in choice.choices[1:] if isinstance(c, str)]
    return []


@cache
def _comments(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> its source comment (trailing, or the comment lines just above it)."""
    try:
        source = textwrap.dedent(inspect.getsource(model))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    notes: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            notes[tok.start[0]] = tok.string.lstrip("#").strip()
    out: dict[str, str] = {}
    field_line = re.compile(r"^    (\w+)\s*:")
    for number, line in enumerate(lines, start=1):
        match = field_line.match(line)
        if not match:
            continue
        above: list[str] = []
        previous = number - 1
        while previous in notes and lines[previous - 1].strip().startswith("#"):
            above.insert(0, notes[previous])
            previous -= 1
        text = " ".join([*above, notes.get(number, "")]).strip()
        if text:
            out[match.group(1)] = text
    return out


def _summary(model: type[BaseModel]) -> str:
    doc = inspect.cleandoc(model.__dict__.get("__doc__") or "")  # not BaseModel's
    return " ".join(doc.split("\n\n")[0].split())


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?")) else text + "."


def _shown_default(value: Any, seconds: bool) -> str | None:
    if value is PydanticUndefined or value is None or isinstance(value, BaseModel):
        return None
    if isinstance(value, list | dict | str) and not value:
        return None
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and seconds:
        return f"{value:g}s"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    metadata: list[Any] = []
    while typing.get_origin(annotation) is Annotated:
        annotation, *extra = typing.get_args(annotation)
        metadata = [*extra, *metadata]
    return annotation, metadata


def _bounds(schema: Schema, metadata: list[Any]) -> Schema:
    for item in metadata:
        if isinstance(item, FieldInfo):
            schema = _bounds(schema, list(item.metadata))
            continue
        for attr, key, exclusive in (
            ("gt", "minimum", "exclusiveMinimum"),
            ("ge", "minimum", None),
            ("lt", "maximum", "exclusiveMaximum"),
            ("le", "maximum", None),
        ):
            bound = getattr(item, attr, None)
            if isinstance(bound, int | float) and not isinstance(bound, bool):
                schema[key] = bound
                if exclusive:
                    schema[exclusive] = True
        text = schema.get("type") == "string" or "x-kubernetes-int-or-string" in schema
        for attr in ("min_length", "max_length"):
            size = getattr(item, attr, None)
            if isinstance(size, int):
                if text:
                    schema["minLength" if attr == "min_length" else "maxLength"] = size
                else:
                    schema["minItems" if attr == "min_length" else "maxItems"] = size
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            schema["pattern"] = pattern
    return schema


@dataclass(frozen=True)
class _Context:
    overrides: Mapping[str, Override]
    optional: frozenset[str]
    exclude: frozenset[str]


def _type_schema(annotation: Any, metadata: list[Any], path: str, ctx: _Context) -> Schema:
    inner, more = _unwrap(annotation)
    metadata = [*more, *metadata]
    for item in metadata:
        func = getattr(item, "func", None)
        if isinstance(item, BeforeValidator | AfterValidator) and func in WIRE_FORMS:
            schema = {k: v for k, v in WIRE_FORMS[func].items() if k != "description"}
            return _bounds(schema, metadata)
    origin = typing.get_origin(inner)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(inner) if a is not type(None)]
        if len(args) == 1 and len(args) < len(typing.get_args(inner)):
            return {**_type_schema(args[0], metadata, path, ctx), "nullable": True}
        raise SchemaError(f"{path}: {inner} has no structural schema; give an override")
    if origin is list:
        (item_type,) = typing.get_args(inner)
        items = _type_schema(item_type, [], path, ctx)
        return _bounds({"type": "array", "items": items}, metadata)
    if origin is dict:
        _, value_type = typing.get_args(inner)
        return {"type": "object", "additionalProperties": _type_schema(value_type, [], path, ctx)}
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return model_schema(
            inner, path=path, overrides=ctx.overrides, optional=ctx.optional, exclude=ctx.exclude
        )
    if origin is Literal:
        return {"type": "string", "enum": [str(v) for v in typing.get_args(inner)]}
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        return {"type": "string", "enum": [m.value for m in inner]}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if inner in simple:
        return _bounds({"type": simple[inner]}, metadata)
    if inner is datetime:
        return {"type": "string", "format": "date-time"}
    raise SchemaError(f"{path}: {inner} has no structural schema; give an override")


def model_schema(
    model: type[BaseModel],
    *,
    path: str = "",
    overrides: Mapping[str, Override] | None = None,
    optional: frozenset[str] = frozenset(),
    exclude: frozenset[str] = frozenset(),
) -> Schema:
    """The structural schema of ``model``: one property per field (by its camelCase name).

    ``overrides`` maps a field path (``targets.kind``; list items are transparent) to a
    function returning that field's schema from the generated one (or from ``{}`` for a
    field the generator cannot express); ``optional`` are paths required by the model but
    filled in by the resource reader (``name`` from ``metadata.name``); ``exclude`` are
    paths left out of the CRD form (file-only shorthands).
    """
    ctx = _Context(overrides or {}, optional, exclude)
    comments = _comments(model)
    props: dict[str, Schema] = {}
    required: list[str] = []
    for name, info in model.model_fields.items():
        key = _alias(name, info)
        sub = f"{path}.{key}" if path else key
        if sub in exclude:
            continue
        if sub in ctx.overrides:
            try:
                base = _type_schema(info.annotation, list(info.metadata), sub, ctx)
            except SchemaError:
                base = {}
            schema = ctx.overrides[sub](base)
        else:
            schema = _type_schema(info.annotation, list(info.metadata), sub, ctx)
        notes = [_sentence(comments.get(name, "")) or schema.pop("description", "")]
        if "enum" in schema:
            notes.append("One of " + ", ".join(str(v) for v in schema["enum"]) + ".")
        wire = _wire_hint(info)
        if wire:
            notes.append(wire)
        shown = _shown_default(info.default, wire.startswith("A duration"))
        if shown is not None:
            notes.append(f"Default: {shown}.")
        text = " ".join(n for n in notes if n)
        if text:
            schema = {
                "description": text,
                **{k: v for k, v in schema.items() if k != "description"},
            }
        props[key] = schema
        for other in _other_spellings(info):
            # Both spellings stay in the schema: a pruned field would silently change what
            # the resource means; giving both is refused by the model.
            props[other] = {
                **schema,
                "description": f"The same as {key} (the YAML calendars' "
                "spelling); give one of them.",
            }
        if info.is_required() and sub not in optional:
            required.append(key)
    out: Schema = {"type": "object"}
    summary = _summary(model)
    if summary:
        out["description"] = summary
    if required:
        out["required"] = required
    out["properties"] = props
    return out


def _wire_hint(info: FieldInfo) -> str:
    _, metadata = _unwrap(info.annotation)
    for item in [*metadata, *info.metadata]:
        func = getattr(item, "func", None)
        if func in WIRE_FORMS and "description" in WIRE_FORMS[func]:
            return str(WIRE_FORMS[func]["description"])
    return ""


# ---- the two CRDs' spec schemas ------------------------------------------------------

_CLUSTER_KINDS = [k.value for k in TargetKind if k not in EMBEDDED_TARGET_KINDS]


def _cluster_kinds(schema: Schema) -> Schema:
    """On a cluster every kind but the embedded local mode's."""
    return {**schema, "enum": _CLUSTER_KINDS}


def capacity_policy_spec_schema() -> Schema:
    """``spec`` of a CapacityPolicy: :class:`PolicySpec` (its ``name`` defaults to
    ``metadata.name``)."""
    schema = model_schema(
        PolicySpec,
        overrides={"targets.kind": _cluster_kinds},
        optional=frozenset({"name"}),
    )
    schema["description"] = (
        "What Headroom keeps ahead of demand, and how (docs/policy-and-calendar.md)."
    )
    return schema


_TIME: Schema = {
    "type": "string",
    "minLength": 1,
    "description": (
        "ISO-8601, with an offset (2025-11-11T20:00:00+08:00, ...Z) or without one in timeZone."
    ),
}


def demand_event_spec_schema() -> Schema:
    """``spec`` of a DemandEvent: :class:`EventSpec`, its CRD spellings first (``name``
    defaults to ``metadata.name``)."""
    schema = model_schema(
        EventSpec,
        overrides={
            "start": lambda _: dict(_TIME),
            "end": lambda _: {**_TIME, "description": str(_TIME["description"]) + " After start."},
            "kind": lambda s: {**s, "default": "custom"},  # shown by the Kind printer column
            # {app: cart} or {matchLabels: {app: cart}}: no structural schema has both, so
            # the cluster keeps it as written and the model checks it.
            "appliesTo": lambda _: {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "description": "The YAML calendars' shorthand of policySelector: {app: cart} "
                "or {matchLabels: {app: cart}}.",
            },
        },
        optional=frozenset({"name"}),
    )
    schema["description"] = (
        "One scheduled livestream, promotion or custom event (docs/policy-and-calendar.md)."
    )
    return schema


# metav1.Condition, as Kubernetes' own types declare it (kubebuilder's markers).
_CONDITION_BOUNDS: dict[str, Schema] = {
    "type": {
        "maxLength": 316,
        "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    },
    "reason": {
        "minLength": 1,
        "maxLength": 1024,
        "pattern": r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    },
    "message": {"maxLength": 32768},
}


def _conditions(schema: Schema) -> Schema:
    item = dict(schema["items"])
    item["required"] = ["type", "status", "reason", "lastTransitionTime"]
    item["properties"] = {
        k: {**v, **_CONDITION_BOUNDS.get(k, {})} for k, v in item["properties"].items()
    }
    return {
        **schema,
        "items": item,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    }


def capacity_policy_status_schema() -> Schema:
    """``status`` of a CapacityPolicy: :class:`~headroom.policies.resources.CapacityPolicyStatus`,
    conditions as ``metav1.Condition`` (a list keyed by type), and kopf's bookkeeping."""
    from headroom.policies.resources import CapacityPolicyStatus

    schema = model_schema(CapacityPolicyStatus, overrides={"conditions": _conditions})
    schema["properties"]["kopf"] = {
        "description": "Bookkeeping of the operator framework (kopf); not part of the API.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    schema["properties"]["alerts"] = {
        "description": (
            "The alert notifier's state (alerts firing and where each was delivered), so "
            "a restarted operator does not page again for what it already sent."
        ),
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    return schema
