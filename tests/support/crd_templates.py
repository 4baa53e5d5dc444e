"""The chart's CapacityPolicy and DemandEvent CRD templates, written from the models.

``headroom.policies.crd_schema`` generates the ``spec`` and ``status`` schemas from the
pydantic models; this module wraps them in the CRDs (names, printer columns,
subresources) and the chart's Helm guards, and writes them to
``charts/headroom/templates/crd/``:

    python -m tests.support.crd_templates          # rewrite the chart's files (make crds)
    python -m tests.support.crd_templates --check  # exit 1 when they are stale

``tests/chart/test_crds.py`` fails when a committed file differs from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from headroom.policies.crd_schema import (
    Schema,
    capacity_policy_spec_schema,
    capacity_policy_status_schema,
    demand_event_spec_schema,
)
from tests.support.chart import CHART_DIR

CRD_DIR = CHART_DIR / "templates" / "crd"
_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
_ROOT = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"type": "object"},
}


def _crd(
    plural: str,
    kind: str,
    short: str,
    description: str,
    properties: dict[str, Schema],
    columns: list[dict[str, Any]],
    status: bool,
) -> dict[str, Any]:
    version: dict[str, Any] = {"name": "v1alpha1", "served": True, "storage": True}
    if status:
        version["subresources"] = {"status": {}}
    version["additionalPrinterColumns"] = columns
    version["schema"] = {
        "openAPIV3Schema": {
            "description": description,
            "type": "object",
            "required": ["spec"],
            "properties": {**_ROOT, **properties},
        }
    }
    return {
        "group": "headroom.dev",
        "scope": "Namespaced",
        "names": {
            "kind": kind,
            "listKind": f"{kind}List",
            "plural": plural,
            "singular": kind.lower(),
            "shortNames": [short],
            "categories": ["headroom"],
        },
        "versions": [version],
    }


def capacity_policy_crd_spec() -> dict[str, Any]:
    return _crd(
        "capacitypolicies",
        "CapacityPolicy",
        "cp",
        "What Headroom keeps ahead of demand for a set of targets (RedisClusters, "
        "Deployments, StatefulSets, HPA floors, any /scale object), and what it plans.",
        {"spec": capacity_policy_spec_schema(), "status": capacity_policy_status_schema()},
        [
            {
                "name": "Targets",
                "type": "integer",
                "description": "Targets the policy sizes.",
                "jsonPath": ".status.targetCount",
            },
            {
                "name": "Ready",
                "type": "string",
                "description": "The Ready condition.",
                "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
            },
            {
                "name": "Next action",
                "type": "string",
                "description": "The next planned change, with its time and reason.",
                "jsonPath": ".status.nextAction",
            },
            {
                "name": "Dry run",
                "type": "boolean",
                "priority": 1,
                "jsonPath": ".spec.dryRun",
            },
            _AGE,
        ],
        status=True,
    )


def demand_event_crd_spec() -> dict[str, Any]:
    return _crd(
        "demandevents",
        "DemandEvent",
        "de",
        "One scheduled livestream, promotion or custom event that CapacityPolicies "
        "(chosen by policySelector) provision ahead of.",
        {"spec": demand_event_spec_schema()},
        [
            {"name": "Kind", "type": "string", "jsonPath": ".spec.kind"},
            {"name": "Start", "type": "string", "jsonPath": ".spec.start"},
            {"name": "End", "type": "string", "jsonPath": ".spec.end"},
            {"name": "Duration", "type": "string", "priority": 1, "jsonPath": ".spec.duration"},
            _AGE,
        ],
        status=False,
    )


_HEAD = """{{- if .Values.crd.enable }}
# Generated from headroom.policies.crd_schema by `make crds` (tests/support/crd_templates.py):
# change the pydantic models, then regenerate; do not edit by hand.
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %s.headroom.dev
  labels:
    {{- include "headroom.labels" . | nindent 4 }}
  {{- if .Values.crd.keep }}
  annotations:
    helm.sh/resource-policy: keep
  {{- end }}
"""


class _Dumper(yaml.SafeDumper):
    """No anchors/aliases: each schema node written out in full, as kubectl shows it."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def template(plural: str) -> str:
    """The text of ``templates/crd/<plural>.headroom.dev.yaml``."""
    spec = {"capacitypolicies": capacity_policy_crd_spec, "demandevents": demand_event_crd_spec}[
        plural
    ]()
    body = yaml.dump({"spec": spec}, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    if "{{" in body or "}}" in body:
        raise ValueError(f"{plural}: the schema would be read as a Helm template")
    return _HEAD % plural + body + "{{- end }}\n"


TEMPLATES = ("capacitypolicies", "demandevents")


def path_of(plural: str) -> Path:
    return CRD_DIR / f"{plural}.headroom.dev.yaml"


def stale() -> list[Path]:
    """The chart's CRD files that differ from what the models generate."""
    return [
        path_of(p)
        for p in TEMPLATES
        if not path_of(p).exists() or path_of(p).read_text() != template(p)
    ]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        for path in stale():
            print(f"{path}: stale; run make crds", file=sys.stderr)
        return 1 if stale() else 0
    for plural in TEMPLATES:
        path_of(plural).write_text(template(plural))
        print(f"wrote {path_of(plural)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
