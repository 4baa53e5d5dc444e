"""The assembly module: every target kind and metrics source maps to its class, missing
clients are one-line policy errors, and a ControlLoop over targets built from a policy
resizes a Deployment, an HPA floor, a RedisCluster and a MachineDeployment-shaped CRD on
the API emulator in one pass (the operator's path), idempotently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from headroom.controller import assembly
from headroom.controller.assembly import World, build_source, build_target, build_targets
from headroom.controller.demo import DemoConfig, DemoRunner
from headroom.controller.kube import GROUP, VERSION, Kube
from headroom.controller.loop import ControlLoop, ListSink
from headroom.controller.signals.base import Metric, Unavailable
from headroom.controller.signals.csv import CsvSource
from headroom.controller.signals.prometheus import PrometheusSource
from headroom.controller.signals.redis_info import RedisInfoSource
from headroom.controller.targets.hpa_floor import HpaFloorTarget
from headroom.controller.targets.redis_cluster import RedisClusterTarget
from headroom.controller.targets.scale_subresource import ScaleSubresourceTarget
from headroom.policies.calendar import Calendar
from headroom.policies.errors import InputError, PolicyError
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.policy import (
    MetricQuery,
    PolicySpec,
    TargetKind,
    load_policy,
    parse_policy,
)
from headroom.policies.series import Series
from headroom.policies.trace import parse_trace_csv
from tests.harness.harness import KubeHarness
from tests.support.chart import chart_crd
from tests.targets.support import (
    MACHINE_DEPLOYMENT_CRD,
    MD_GROUP,
    MD_VERSION,
    NS,
    hpa,
    machine_deployment,
    patches,
    workload,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"
T0 = 1_700_006_400.0
DAY = 86400.0


def _target(kind: str, name: str = "x", **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NS, "kind": kind, "capacityPerUnit": 1000, **extra}


def _policy(*targets: dict[str, Any], metrics: dict[str, Any] | None = None) -> PolicySpec:
    doc: dict[str, Any] = {"name": "shop", "targets": list(targets)}
    if metrics is not None:
        doc["metrics"] = metrics
    return parse_policy(doc)


def test_every_kind_and_source_the_schema_accepts_has_a_builder() -> None:
    """The schema's names are the registries' (generated: make registry), alphabetical."""
    assert list(TargetKind) == list(assembly.TARGETS) == sorted(assembly.TARGETS)
    pattern = MetricQuery.model_fields["source"].metadata[0].pattern
    assert pattern.strip("^()$").split("|") == list(assembly.SOURCES) == sorted(assembly.SOURCES)


def test_kinds_map_to_their_classes(kube: KubeHarness, api: Kube) -> None:
    spec = _policy(
        _target("Deployment", "web"),
        _target("StatefulSet", "db"),
        _target("HorizontalPodAutoscaler", "api"),
        _target("RedisCluster", "cart", minUnits=3),
        _target(
            "Scale", "edge", apiVersion=f"{MD_GROUP}/{MD_VERSION}", scaleKind="MachineDeployment"
        ),
    )
    built = build_targets(spec, World(kube=api))
    assert list(built) == ["web", "db", "api", "cart", "edge"]
    assert isinstance(built["web"], ScaleSubresourceTarget)
    assert built["web"].name == f"deployment/{NS}/web"
    assert isinstance(built["db"], ScaleSubresourceTarget)
    assert built["db"].ref.kind == "StatefulSet"
    assert isinstance(built["api"], HpaFloorTarget)
    assert isinstance(built["cart"], RedisClusterTarget)
    edge = built["edge"]
    assert isinstance(edge, ScaleSubresourceTarget)
    assert (edge.ref.group, edge.ref.resource) == (MD_GROUP, "machinedeployments")


def test_missing_clients_are_one_line_policy_errors() -> None:
    with pytest.raises(PolicyError) as err:
        build_target(_policy(_target("Deployment", "web")).targets[0], World())
    assert str(err.value) == (
        "policy: targets[web].kind: Deployment needs a Kubernetes cluster (run it with the "
        "operator)"
    )
    with pytest.raises(PolicyError, match=r"targets\[local\]\.kind: LocalRedisCluster runs"):
        build_target(_policy(_target("LocalRedisCluster", "local")).targets[0], World())
    web = _policy(_target("Deployment"), metrics={"qps": {"source": "prometheus"}})
    with pytest.raises(PolicyError, match=r"metrics\.qps\.url: is required for source prom"):
        build_source(web.metrics, World())
    with pytest.raises(PolicyError, match=r"metrics\.qps\.url: is required for source csv"):
        build_source(
            _policy(_target("Deployment"), metrics={"qps": {"source": "csv"}}).metrics, World()
        )
    with pytest.raises(PolicyError, match=r"metrics\.qps\.url: is required for source redis"):
        build_source(_policy(_target("Deployment")).metrics, World())


def test_sources_are_built_from_the_policy() -> None:
    cart = (EXAMPLES / "redis-cart-policy.yaml").read_text()
    spec = load_policy(cart, "redis-cart-policy.yaml")
    prom = build_source(spec.metrics, World())
    assert isinstance(prom, PrometheusSource)
    assert prom.queries.render(Metric.QPS) == spec.metrics.qps.query

    csv_spec = _policy(
        _target("Deployment"),
        metrics={"qps": {"source": "csv", "url": f"file://{EXAMPLES}/qps.csv"}},
    )
    csv = build_source(csv_spec.metrics, World())
    assert isinstance(csv, CsvSource)
    trace = parse_trace_csv((EXAMPLES / "qps.csv").read_bytes(), "qps.csv")
    got = csv.range(Metric.QPS, trace.start, trace.end, trace.step)
    assert not isinstance(got, Unavailable)
    assert np.allclose(got.v, trace.v, equal_nan=True)

    redis = build_source(_policy(_target("Deployment")).metrics, World(redis_seed="127.0.0.1:1"))
    assert isinstance(redis, RedisInfoSource) and redis.seed == "127.0.0.1:1"
    url = {"qps": {"source": "redis", "url": "redis://127.0.0.1:7001"}}
    redis = build_source(_policy(_target("Deployment"), metrics=url).metrics, World())
    assert isinstance(redis, RedisInfoSource) and redis.seed == "127.0.0.1:7001"


def test_demo_refuses_a_policy_it_cannot_run(tmp_path: Path) -> None:
    policy = tmp_path / "web.yaml"
    policy.write_text((EXAMPLES / "web-deployment-policy.yaml").read_text())
    with pytest.raises(InputError) as err:
        DemoRunner(DemoConfig(out_dir=tmp_path / "out", policy_file=policy))
    assert str(err.value) == (
        f"{policy}: targets[0:storefront].kind: the demo runs a LocalRedisCluster, not Deployment"
    )


class FlatHistory:
    """Two weeks of steady demand: 5,000 QPS (a stand-in for Prometheus)."""

    def history(self, end: float) -> Series:
        t = np.arange(end - 14 * DAY, end, 60.0)
        return Series(t, np.full(t.shape, 5000.0))


class FixedClock:
    def now(self) -> float:
        return T0 + 14 * DAY

    def sleep(self, seconds: float) -> None:  # pragma: no cover - one pass only
        raise AssertionError("not used")


def test_loop_over_assembled_targets_resizes_each_kind(kube: KubeHarness, api: Kube) -> None:
    kube.apply(workload("Deployment", "web", 2))
    kube.apply(workload("Deployment", "api", 2))
    kube.apply(hpa("api", "api", min_replicas=2, max_replicas=40))
    kube.apply(chart_crd("redisclusters.headroom.dev"))
    kube.apply(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RedisCluster",
            "metadata": {"name": "cart", "namespace": NS},
            "spec": {"masters": 3},
        }
    )
    cart = kube.get(f"{GROUP}/{VERSION}", "RedisCluster", "cart", NS)
    assert cart is not None
    ready = {"phase": "Ready", "masters": 3, "readyMasters": 3}
    ready["observedGeneration"] = cart["metadata"]["generation"]  # the operator saw it
    api.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, NS, "redisclusters", "cart", {"status": ready}
    )
    kube.apply(MACHINE_DEPLOYMENT_CRD)
    kube.apply(machine_deployment("edge", 2))
    bounds = {"minUnits": 2, "maxUnits": 30, "provisioning": {"fixedSeconds": "2m"}}
    spec = _policy(
        _target("Deployment", "web", **bounds),
        _target("HorizontalPodAutoscaler", "api", **bounds),
        _target("RedisCluster", "cart", **{**bounds, "minUnits": 3}),
        _target(
            "Scale", "edge", apiVersion=f"{MD_GROUP}/{MD_VERSION}", scaleKind="MachineDeployment",
            **bounds,
        ),
    )  # fmt: skip
    targets = build_targets(spec, World(kube=api))
    loop = ControlLoop(
        spec,
        targets=targets,
        history=FlatHistory(),
        calendar=Calendar,
        clock=FixedClock(),
        forecaster=lambda: HeadroomForecaster(spec.forecast),
        sink=ListSink(),
    )
    report = loop.reconcile()
    wanted = {r.name: r.decision.desired_units for r in report.targets if r.decision}
    # 5,000 QPS at 80% of 1,000 QPS per unit: at least 7 units each.
    assert set(wanted) == {"web", "api", "cart", "edge"} and min(wanted.values()) >= 7
    assert [e.kind for e in report.events] == ["Scaled"] * 4, report.events

    def size(api_version: str, kind: str, name: str, path: tuple[str, ...]) -> int:
        node: Any = kube.get(api_version, kind, name, NS)
        for key in path:
            node = node[key]
        return int(node)

    assert size("apps/v1", "Deployment", "web", ("spec", "replicas")) == wanted["web"]
    assert size("apps/v1", "Deployment", "api", ("spec", "replicas")) == 2  # the HPA's job
    hpa_min = ("spec", "minReplicas")
    assert size("autoscaling/v2", "HorizontalPodAutoscaler", "api", hpa_min) == wanted["api"]
    assert size(f"{GROUP}/{VERSION}", "RedisCluster", "cart", ("spec", "masters")) == wanted["cart"]
    md = (f"{MD_GROUP}/{MD_VERSION}", "MachineDeployment", "edge", ("spec", "replicas"))
    assert size(*md) == wanted["edge"]

    # Level-triggered: the next pass reads the sizes back from the cluster and writes nothing.
    writes = sum(patches(kube, r) for r in ("deployments", "horizontalpodautoscalers"))
    writes += sum(
        patches(kube, r, "scale") for r in ("deployments", "redisclusters", "machinedeployments")
    )
    again = loop.reconcile()
    assert not [e for e in again.events if e.kind == "Scaled"]
    after = sum(patches(kube, r) for r in ("deployments", "horizontalpodautoscalers"))
    after += sum(
        patches(kube, r, "scale") for r in ("deployments", "redisclusters", "machinedeployments")
    )
    assert after == writes == 4


def test_operator_builder_puts_targets_in_the_policys_namespace(api: Kube) -> None:
    spec = parse_policy(
        {
            "targets": [
                {"name": "web", "kind": "Deployment", "capacityPerUnit": 10},
                {"name": "db", "kind": "StatefulSet", "namespace": "data", "capacityPerUnit": 10},
            ]
        }
    )
    web, db = (assembly.targets_for(api, "shop", t) for t in spec.targets)
    assert web.name == "deployment/shop/web"  # no namespace given: the policy's
    assert db.name == "statefulset/data/db"  # its own


def test_history_over_the_policys_source(tmp_path: Path) -> None:
    trace = parse_trace_csv((EXAMPLES / "qps.csv").read_bytes(), "qps.csv")
    spec = _policy(
        _target("Deployment"), metrics={"qps": {"source": "csv", "url": str(EXAMPLES / "qps.csv")}}
    )
    history = assembly.build_history(spec, build_source(spec.metrics, World()), step=trace.step)
    got = history.history(trace.end)
    assert history.lookback == spec.forecast.history
    inside = got.between(trace.start, trace.end + 1)  # between() excludes its end
    assert got.end == trace.end and np.allclose(inside.v, trace.v, equal_nan=True)
    assert np.isnan(got.before(trace.start).v).all()  # before the file: gaps, never zeros
