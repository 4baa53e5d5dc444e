"""The Helm chart ``charts/headroom`` rendered offline, for tests.

Renders with ``helm-python-sdk`` (Helm's own Go engine through a C library: the same
templates, ``values.schema.json`` check and value merging as ``helm install``, with no
helm binary and no cluster). The CRD, RBAC and e2e tests take their objects from here, so
what they prove is what the chart ships.

    objs = render_chart({"rbac": {"clusterWide": True}})
    crd = chart_crd("redisclusters.headroom.dev")
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "headroom"
EXAMPLES_DIR = CHART_DIR / "examples"
RELEASE = "headroom"
NAMESPACE = "headroom"

Obj = dict[str, Any]


class ChartError(Exception):
    """The chart did not render: bad values (schema) or a template error; Helm's message."""


def render_manifests(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    chart_dir: Path = CHART_DIR,
) -> dict[str, str]:
    """Template path -> rendered text, as ``helm template`` would print them (NOTES.txt too)."""
    try:
        with helm.Chart.load(chart_dir) as chart:
            return chart.render(
                dict(values) if values is not None else None,
                name=release,
                namespace=namespace,
                is_install=True,
            )
    except helm.HelmError as err:
        raise ChartError(str(err).strip()) from err


def render_chart(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    chart_dir: Path = CHART_DIR,
) -> list[Obj]:
    """Every object the chart renders for ``values`` (merged over values.yaml), in a fixed
    order: by template path, then by position in the template."""
    rendered = render_manifests(values, release=release, namespace=namespace, chart_dir=chart_dir)
    objects: list[Obj] = []
    for path in sorted(rendered):
        if not path.endswith((".yaml", ".yml")):
            continue  # NOTES.txt
        for doc in yaml.safe_load_all(rendered[path]):
            if doc:
                objects.append(doc)
    return objects


def validate_values(values: Mapping[str, Any] | None, *, chart_dir: Path = CHART_DIR) -> None:
    """Check ``values`` against values.schema.json (after merging over values.yaml);
    raises :class:`ChartError` naming the offending keys."""
    try:
        with helm.Chart.load(chart_dir) as chart:
            chart.validate_schema(chart.merge_values(dict(values) if values else None))
    except helm.HelmError as err:
        raise ChartError(str(err).strip()) from err


def of_kind(objects: Iterable[Obj], *kinds: str) -> list[Obj]:
    """The objects whose ``kind`` is one of ``kinds``."""
    return [o for o in objects if o.get("kind") in kinds]


@cache
def _crds_json() -> str:
    return json.dumps(of_kind(render_chart(), "CustomResourceDefinition"))


def chart_crds() -> list[Obj]:
    """The chart's CustomResourceDefinitions (default values), fresh copies each call."""
    crds: list[Obj] = json.loads(_crds_json())
    return crds


def chart_crd(name: str) -> Obj:
    """One of the chart's CRDs by ``metadata.name``, e.g. ``redisclusters.headroom.dev``."""
    for crd in chart_crds():
        if crd["metadata"]["name"] == name:
            return crd
    raise KeyError(f"the chart has no CRD named {name!r}")


def example(name: str) -> Obj:
    """A sample object from ``charts/headroom/examples/`` (e.g. ``rediscluster-cart.yaml``)."""
    doc: Obj = yaml.safe_load((EXAMPLES_DIR / name).read_text())
    return doc
