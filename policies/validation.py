"""Checks every input parser shares, in Headroom's one wording (``headroom.policies.errors``).

- :func:`first_error` turns pydantic's validation errors into that wording. Called where
  a pydantic model validates user input -- the policy loader (``policy.parse_policy``)
  and the calendar event builder (``calendars._event``) -- so "Extra inputs are not
  permitted", "Input should be ..." and the like never reach a user: an unknown field,
  a missing one, a wrong type and an out-of-range value each read the same everywhere.
- :func:`decode_text` refuses binary and non-UTF-8 files before any parser sees them.
- :func:`document_kind` says what a parsed file looks like, so giving a validator the
  other kind of file (a policy to ``calendar validate``) says so instead of failing on
  a field of the wrong schema.
- :func:`load_yaml_documents` reads every YAML file a user gives (policy, calendar,
  alert sinks) with one safe loader: no anchors or aliases, timestamps kept as text,
  YAML 1.2 booleans; a syntax error is one line with the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, Field, ValidationError
from pydantic_core import ErrorDetails

from headroom.policies.errors import REQUIRED, UNKNOWN_FIELD, InputError, PolicyError, must_be

# pydantic error type -> what the value must be
_TYPES = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "finite_number": "a finite number",
}
_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def _items(n: Any, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def describe(error: ErrorDetails) -> str:
    """The problem part of one pydantic error, in Headroom's wording."""
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error.get("input")
    if kind == "missing":
        return REQUIRED
    if kind == "extra_forbidden":
        return UNKNOWN_FIELD
    if kind in _TYPES:
        return must_be(_TYPES[kind], value)
    if kind in _BOUNDS:
        key, sign = _BOUNDS[kind]
        bound = ctx.get(key)
        shown = f"{bound:g}" if isinstance(bound, int | float) else str(bound)
        return must_be(f"{sign} {shown}", value)
    if kind in ("enum", "literal_error"):
        return must_be(f"one of {ctx.get('expected')}", value)
    if kind == "too_short":
        return f"must have at least {_items(ctx.get('min_length'), 'item')}"
    if kind == "too_long":
        return f"must have at most {_items(ctx.get('max_length'), 'item')}"
    if kind == "string_too_short":
        return (
            "must not be empty"
            if ctx.get("min_length") == 1
            else must_be(f"at least {_items(ctx.get('min_length'), 'character')}", value)
        )
    if kind == "string_pattern_mismatch":
        return must_be(f"a string matching {ctx.get('pattern')}", value)
    if kind in ("value_error", "assertion_error"):
        cause = ctx.get("error")
        return str(cause) if cause is not None else error["msg"].removeprefix("Value error, ")
    # Anything else: pydantic's sentence, in our voice ("must be ..." rather than "Input should").
    msg = error["msg"]
    if msg.startswith("Input should be "):
        return must_be(msg.removeprefix("Input should be ").rstrip("."), value)
    return msg[:1].lower() + msg[1:]


def first_error(
    err: ValidationError, path: Callable[[tuple[int | str, ...]], str]
) -> tuple[str, str]:
    """``(field path, problem)`` of the first error; ``path`` renders pydantic's location."""
    first = err.errors()[0]
    loc = tuple(first["loc"])
    if len(loc) >= 2 and loc[-1] == "[key]":  # a mapping's key: name the mapping and the key
        return path(loc[:-2]), f"key {str(loc[-2])!r} {describe(first)}"
    return path(loc), describe(first)


def decode_text(data: str | bytes, source: str, error: type[InputError]) -> str:
    """``data`` as text without a leading byte-order mark; a binary or non-UTF-8 file is
    one ``error`` line (and none of its bytes are echoed)."""
    nul = data.find(b"\x00") if isinstance(data, bytes) else data.find("\x00")
    if nul >= 0:
        raise error(f"{source}: is a binary file, not text (NUL byte at {nul})")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise error(
                f"{source}: is not a UTF-8 text file (byte {err.start} is {data[err.start]:#04x})"
            ) from None
    return data.removeprefix("\ufeff")


POLICY = "a capacity policy (it has targets:)"
CALENDAR = "a calendar (it has events:)"
ICS = "an iCalendar file (BEGIN:VCALENDAR)"


def document_kind(doc: Any) -> str | None:
    """What one parsed YAML document (or a file's text) looks like: :data:`POLICY`,
    :data:`CALENDAR`, :data:`ICS` or None when it is neither."""
    if isinstance(doc, str):
        return ICS if doc.lstrip().upper().startswith("BEGIN:VCALENDAR") else None
    if not isinstance(doc, dict):
        return None
    spec = doc.get("spec")
    if doc.get("kind") == "CapacityPolicy" or "targets" in doc:
        return POLICY
    if isinstance(spec, dict) and "targets" in spec:
        return POLICY
    if doc.get("kind") in ("DemandEvent", "DemandEventList") or "events" in doc:
        return CALENDAR
    return None


def as_label(value: Any) -> Any:
    """Labels are strings; YAML turns ``region: 1`` into an int, which still means "1"."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return value


# Label maps everywhere (event labels and selectors, policy targets' labels, a policy's
# eventSelector): non-empty keys, string values (numbers and booleans read as strings).
LabelMap = dict[Annotated[str, Field(min_length=1)], Annotated[str, BeforeValidator(as_label)]]


# --- reading YAML: one safe loader for every YAML file a user gives -------------------


class _TextLoader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as strings: time zones are resolved by us, not YAML,
    and refuses anchors and aliases (``&x``/``*x``): a user's file has no need of them, and
    nested aliases expand exponentially (a 402-byte "billion laughs" took 3.25 GiB)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "YAML anchors and aliases (&name, *name) are not allowed",
                event.start_mark,
            )  # fmt: skip
        return super().compose_node(parent, index)


_TextLoader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# YAML 1.2 booleans only: `on: [action]` is a key named "on", not True (as in YAML 1.1).
_TextLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def load_yaml_documents(
    text: str | bytes, source: str, error: type[InputError] = PolicyError
) -> list[Any]:
    """Every YAML document in ``text``; a syntax error is one line with file and line."""
    text = decode_text(text, source, error)
    try:
        return [doc for doc in yaml.load_all(text, Loader=_TextLoader) if doc is not None]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        where = f"{source}: line {mark.line + 1}" if mark is not None else source
        raise error(f"{where}: {problem}") from None
