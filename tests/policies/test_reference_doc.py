"""docs/policy-and-calendar.md names every field of the policy and event schemas."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from headroom.policies.calendars._event import EventSpec
from headroom.policies.policy import PolicySpec

DOC = Path(__file__).resolve().parents[2] / "docs" / "policy-and-calendar.md"


def _paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    out: list[str] = []
    for name, field in model.model_fields.items():
        path = prefix + (field.alias or name)
        out.append(path)
        for arg in typing.get_args(field.annotation) or (field.annotation,):
            for inner in typing.get_args(arg) or (arg,):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    out += _paths(inner, path + ".")
    return out


def _documented(text: str) -> set[str]:
    """Field names in the first column of the doc's tables (``a.b``, ``a[].b``, ``.c``)."""
    names: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        cells = re.findall(r"`([^`]+)`", first)
        base = ""
        for cell in cells:
            cell = cell.replace("[]", "")
            if cell.startswith(".") and base:
                cell = base.rsplit(".", 1)[0] + cell
            base = cell
            parts = cell.split(".")
            names.update(".".join(parts[: i + 1]) for i in range(len(parts)))  # and parents
    return names


def test_every_policy_and_event_field_is_documented() -> None:
    documented = _documented(DOC.read_text())
    targets = {p.removeprefix("targets.") for p in _paths(PolicySpec) if p.startswith("targets.")}
    policy = {p for p in _paths(PolicySpec) if not p.startswith("targets.")}
    latency = {p for p in policy if p.startswith("metrics.latencyP99.")}
    missing = sorted((policy - latency - documented) | (targets - documented))
    assert not missing, f"fields missing from {DOC.name}: {missing}"
    event = set(_paths(EventSpec)) - {"appliesTo.matchLabels"}  # appliesTo is documented whole
    assert not sorted(event - documented), sorted(event - documented)
