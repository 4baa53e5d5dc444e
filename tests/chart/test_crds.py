"""The chart's CapacityPolicy and DemandEvent CRDs: generated from the models, admitted by
the emulator, and agreeing with the shared validation on the samples."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from kubernetes import client
from kubernetes.client import ApiException

from headroom.policies.calendars import load_calendar
from headroom.policies.crd_schema import SchemaError, model_schema
from headroom.policies.policy import PolicySpec, load_policy
from headroom.policies.resources import calendar_from_resources, policy_from_resource
from tests.harness.harness import KubeHarness
from tests.support.chart import EXAMPLES_DIR, chart_crd, example, of_kind, render_chart
from tests.support.crd_templates import stale

k8s: Any = client
GV = ("headroom.dev", "v1alpha1")


def test_chart_crds_are_what_the_models_generate() -> None:
    assert stale() == [], "run `make crds` after changing a policy or event model"


def test_the_generated_schema_follows_every_policy_field() -> None:
    schema = chart_crd("capacitypolicies.headroom.dev")["spec"]["versions"][0]["schema"]
    spec = schema["openAPIV3Schema"]["properties"]["spec"]["properties"]
    for name, info in PolicySpec.model_fields.items():
        assert (info.alias or name) in spec
    target = spec["targets"]["items"]
    assert target["required"] == ["name", "capacityPerUnit"]
    assert "LocalRedisCluster" not in target["properties"]["kind"]["enum"]
    assert target["properties"]["capacityPerUnit"] == {
        "description": "QPS one unit serves within the SLO (declared).",
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 1e12,  # policies/bounds.py
    }
    duration = spec["leadTime"]
    assert duration["x-kubernetes-int-or-string"] and "Default: 0s." in duration["description"]


def test_a_field_without_a_structural_form_is_refused_by_name() -> None:
    from pydantic import BaseModel

    class Odd(BaseModel):
        when: Any

    with pytest.raises(SchemaError, match="when: "):
        model_schema(Odd)


def test_crd_shapes_and_printer_columns() -> None:
    cp = chart_crd("capacitypolicies.headroom.dev")["spec"]
    de = chart_crd("demandevents.headroom.dev")["spec"]
    assert (cp["names"]["kind"], cp["names"]["shortNames"], cp["scope"]) == (
        "CapacityPolicy",
        ["cp"],
        "Namespaced",
    )
    assert (de["names"]["kind"], de["names"]["shortNames"]) == ("DemandEvent", ["de"])
    assert cp["versions"][0]["subresources"] == {"status": {}}
    assert "subresources" not in de["versions"][0]
    cols = [c["name"] for c in cp["versions"][0]["additionalPrinterColumns"]]
    assert cols == ["Targets", "Ready", "Next action", "Dry run", "Age"]
    cols = [c["name"] for c in de["versions"][0]["additionalPrinterColumns"]]
    assert cols == ["Kind", "Start", "End", "Duration", "Age"]
    status = cp["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert {"observedGeneration", "conditions", "forecast", "plan", "lastActions", "driver"} <= set(
        status["properties"]
    )
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    for crd in of_kind(render_chart(), "CustomResourceDefinition"):
        kubernetes_validate.validate(crd, "1.25", strict=True)


def _create(custom: Any, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
    stored: dict[str, Any] = custom.create_namespaced_custom_object(*GV, "default", plural, obj)
    return stored


def _rejected(custom: Any, plural: str, obj: dict[str, Any]) -> list[str]:
    with pytest.raises(ApiException) as exc:
        custom.create_namespaced_custom_object(*GV, "default", plural, obj)
    assert exc.value.status == 422, exc.value.body
    return [c["field"] for c in json.loads(exc.value.body or "{}")["details"]["causes"]]


def test_samples_are_admitted_unchanged_and_read_back_by_the_shared_validation(
    kube: KubeHarness,
) -> None:
    kube.apply(of_kind(render_chart(), "CustomResourceDefinition"))
    custom = k8s.CustomObjectsApi(kube.api_client())
    sample = example("capacitypolicy-shop.yaml")
    stored = _create(custom, "capacitypolicies", sample)
    assert stored["spec"] == sample["spec"]  # nothing pruned, nothing defaulted
    spec = policy_from_resource(stored)
    assert spec == load_policy((EXAMPLES_DIR / "capacitypolicy-shop.yaml").read_text()).model_copy(
        update={"targets": spec.targets, "event_selector": spec.event_selector}
    )
    assert [t.namespace for t in spec.targets] == ["default", "default"]
    assert spec.event_selector == {"app": "shop", "headroom.dev/policy": "shop"}
    event = example("demandevent-launch.yaml")
    stored_event = _create(custom, "demandevents", event)
    assert stored_event["spec"] == event["spec"]
    cal = calendar_from_resources([stored_event], spec.event_selector)
    assert [e.name for e in cal.events] == ["Autumn launch livestream"]
    assert cal.events[0].end - cal.events[0].start == 7200
    assert calendar_from_resources([stored_event], {"app": "other"}).events == ()
    # Every event of both sample calendars is an admissible DemandEvent.
    for name in ("calendar-shop.yaml", "calendar-shop.ics"):
        data = (EXAMPLES_DIR / name).read_bytes()
        from headroom.policies.resources import imported_resources

        for obj in imported_resources(load_calendar(data, name), "shop", "default"):
            _create(custom, "demandevents", obj)


def test_the_crd_refuses_wrong_types_and_bounds_with_the_field(kube: KubeHarness) -> None:
    kube.apply(of_kind(render_chart(), "CustomResourceDefinition"))
    custom = k8s.CustomObjectsApi(kube.api_client())
    base = example("capacitypolicy-shop.yaml")
    target = base["spec"]["targets"][0]

    def policy(**spec: Any) -> dict[str, Any]:
        return {**base, "metadata": {"name": "bad"}, "spec": {**base["spec"], **spec}}

    assert _rejected(custom, "capacitypolicies", policy(targets=[])) == ["spec.targets"]
    assert _rejected(custom, "capacitypolicies", policy(targets=[{**target, "kind": "Pod"}])) == [
        "spec.targets[0].kind"
    ]
    assert _rejected(
        custom, "capacitypolicies", policy(targets=[{**target, "capacityPerUnit": 0}])
    ) == ["spec.targets[0].capacityPerUnit"]
    assert _rejected(custom, "capacitypolicies", policy(leadTime="soon")) == ["spec.leadTime"]
    assert _rejected(custom, "capacitypolicies", policy(dryRun="yes")) == ["spec.dryRun"]
    event = example("demandevent-launch.yaml")
    # Any kind name is an event kind (they group learning); a non-string is not.
    assert _rejected(custom, "demandevents", {**event, "spec": {**event["spec"], "kind": 7}}) == [
        "spec.kind"
    ]
    concert = {**event, "metadata": {"name": "gig"}, "spec": {**event["spec"], "kind": "concert"}}
    assert _create(custom, "demandevents", concert)["spec"]["kind"] == "concert"
    assert _rejected(
        custom, "demandevents", {**event, "spec": {**event["spec"], "labels": {"host": 7}}}
    ) == ["spec.labels.host"]
    listed = custom.list_namespaced_custom_object(*GV, "default", "capacitypolicies")
    assert listed["items"] == []
