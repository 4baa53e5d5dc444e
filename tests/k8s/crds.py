"""CRDs shaped like Headroom's (group headroom.dev, v1alpha1), for the harness tests."""

from __future__ import annotations

from typing import Any

_CONDITIONS = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
        },
    },
}

REDIS_CLUSTER_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "redisclusters.headroom.dev"},
    "spec": {
        "group": "headroom.dev",
        "scope": "Namespaced",
        "names": {
            "plural": "redisclusters",
            "singular": "rediscluster",
            "kind": "RedisCluster",
            "shortNames": ["rc"],
        },
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.masters",
                        "statusReplicasPath": ".status.readyMasters",
                        "labelSelectorPath": ".status.selector",
                    },
                },
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["masters"],
                                "properties": {
                                    "masters": {"type": "integer", "minimum": 1, "maximum": 100},
                                    "replicasPerMaster": {
                                        "type": "integer",
                                        "minimum": 0,
                                        "default": 0,
                                    },
                                    "maxmemory": {
                                        "type": "string",
                                        "pattern": "^[0-9]+(mb|gb)$",
                                        "default": "64mb",
                                    },
                                    "image": {"type": "string", "default": "redis:7"},
                                    "mode": {
                                        "type": "string",
                                        "enum": ["cluster", "standalone"],
                                        "default": "cluster",
                                    },
                                    "resources": {
                                        "type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    },
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "readyMasters": {"type": "integer"},
                                    "selector": {"type": "string"},
                                    "observedGeneration": {"type": "integer"},
                                    "conditions": _CONDITIONS,
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}

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
