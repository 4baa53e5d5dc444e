"""The files generated from the plug-in registries (``make registry``): the policy
schema's names, the chart's target RBAC rules and the docs' tables are what the
registries say, and follow a new row."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from headroom.controller.targets import registry as targets
from headroom.controller.targets.scale_subresource import scale_rules
from headroom.policies.plugins import SourceKind, TargetKind
from tests.support import registry_files
from tests.support.registry_files import stale


def test_the_generated_files_are_what_the_registries_generate() -> None:
    assert stale() == [], "run `make registry` (make crds) after changing a registry"


def test_the_schema_accepts_exactly_the_registries_names() -> None:
    from headroom.controller.alerts.config import SINKS
    from headroom.controller.signals.registry import SOURCES
    from headroom.policies.policy import AlertSinkKind

    assert [k.value for k in TargetKind] == list(targets.TARGETS)
    assert [k.value for k in SourceKind] == list(SOURCES)
    assert [k.value for k in AlertSinkKind] == list(SINKS)


def test_a_new_row_reaches_the_schema_the_chart_and_the_docs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The generator reads the registry: a row added to TARGETS (a PodDisruptionBudget-
    sized target, say) gives a schema member, an RBAC rule and a docs line."""
    row = replace(
        targets.TARGETS["Deployment"],
        rules=lambda _t: scale_rules("example.dev", "widgets"),
        doc="a widget (`widget.py`)",
    )
    monkeypatch.setattr(targets, "TARGETS", {**targets.TARGETS, "WidgetSet": row})
    monkeypatch.setattr(registry_files, "TARGETS", targets.TARGETS)
    assert '    # a widget (`widget.py`)\n    WIDGET_SET = "WidgetSet"\n' in (
        registry_files.plugins_py()
    )
    assert (
        '- apiGroups: ["example.dev"]\n  resources: ["widgets/scale"]\n  verbs: ["get", "patch"]'
        in registry_files.target_rules_tpl()
    )
    docs = registry_files.generated()[registry_files.DOCS / "adding-a-target.md"]
    assert "| `WidgetSet` | a widget (`widget.py`) |" in docs


def test_a_new_sink_reaches_the_schema_and_the_charts_values_schema(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from headroom.controller.alerts.config import SINKS

    teams = replace(SINKS["webhook"], doc="`url` (`teams.py`: a Teams workflow)")
    monkeypatch.setattr(registry_files, "SINKS", {**SINKS, "teams": teams})
    assert '    TEAMS = "teams"\n' in registry_files.plugins_py()
    schema = json.loads(registry_files.values_schema())
    sink = schema["properties"]["alerts"]["properties"]["sinks"]["additionalProperties"]
    assert sink["properties"]["type"]["enum"] == [*SINKS, "teams"]
