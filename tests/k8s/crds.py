"""CRDs of the harness tests: the chart's RedisCluster, plus test-only kinds (headroom.dev)."""

from __future__ import annotations

from typing import Any

from tests.support.chart import chart_crd

# The RedisCluster CRD is the chart's own (rendered from charts/headroom), never a copy.
REDIS_CLUSTER_CRD: dict[str, Any] = chart_crd("redisclusters.headroom.dev")

# Test-only kinds, for behaviour the chart's CRDs do not exercise. This DemandEvent is NOT the
# chart's (charts/headroom/templates/crd/demandevents.headroom.dev.yaml, which declares no
# defaults and no date-time format): it keeps the conformance suite's defaulting and
# date-time checks on a schema that has them. Never install it beside the chart's.
DEMAND_EVENT_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "demandevents.headroom.dev"},
    "spec": {
        "group": "headroom.dev",
        "scope": "Namespaced",
        "names": {"plural": "demandevents", "singular": "demandevent", "kind": "DemandEvent"},
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["start", "end"],
                                "properties": {
                                    "start": {"type": "string", "format": "date-time"},
                                    "end": {"type": "string", "format": "date-time"},
                                    "kind": {"type": "string", "default": "custom"},
                                    "labels": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    },
                                    "expectation": {
                                        "type": "object",
                                        "properties": {
                                            "multiplier": {"type": "number", "minimum": 0},
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}

CLUSTER_SCOPED_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "pools.headroom.dev"},
    "spec": {
        "group": "headroom.dev",
        "scope": "Cluster",
        "names": {"plural": "pools", "singular": "pool", "kind": "Pool"},
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}
