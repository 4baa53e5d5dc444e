"""JSON forms of plain values, one way each: a value's fields by name, and floats JSON
cannot hold.

The reports, topologies and plans that ``--json`` prints and the operator stores build
their documents with :func:`fields_json`; files that keep measured samples (gaps are NaN)
pass through :func:`finite_or_none`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def fields_json(obj: Any, *names: str) -> dict[str, Any]:
    """``{name: obj.name}`` for each of ``names``, in that order; a tuple becomes a list and
    a mapping a dict (what ``json`` writes for them), anything else is left as it is."""
    return {name: _plain(getattr(obj, name)) for name in names}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def finite_or_none(obj: Any) -> Any:
    """``obj`` (dicts, lists, numbers) with every NaN or infinite float as None: JSON has
    no token for them (``json`` writes bare ``NaN``, which other tools refuse)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    return obj
