"""The objects a RedisCluster owns, built from its spec: an auth Secret, two Services, a
PDB, a StatefulSet.

Pure builders (dicts in, dicts out) called by the RedisCluster reconciler; every
object carries the cluster's labels and a controller ownerReference, so deleting
the RedisCluster garbage-collects them.

Secure by default: every node requires a password. The auth Secret
(:func:`auth_secret`) holds it twice, as ``password`` (for clients, the probes'
``REDISCLI_AUTH`` and the operator) and as ``redis.conf`` (``requirepass`` and
``masterauth`` lines), a file redis-server reads from a Secret volume: the password
is never on a command line, where ``/proc/<pid>/cmdline`` would show it. Protected
mode stays on (with a password Redis serves non-loopback clients).
"""

from __future__ import annotations

import base64
from typing import Any

from headroom.controller.operator.specs import RedisClusterSpec, redis_maxmemory
from headroom.controller.redis.connection import redis_auth_config
from headroom.controller.redis.nodes import CLUSTER_NODE_ARGS

CLUSTER_LABEL = "headroom.dev/cluster"
MANAGED_BY_LABEL = "headroom.dev/managed-by"
BUS_OFFSET = 10000
PASSWORD_KEY = "password"
AUTH_CONF_KEY = "redis.conf"
AUTH_DIR = "/etc/redis/auth"  # the auth Secret's redis.conf, read-only
TLS_DIR = "/etc/redis/tls"  # spec.tls's Secret: tls.crt, tls.key, ca.crt, read-only
TLS_FILES = ("tls.crt", "tls.key", "ca.crt")
# spec.persistence's claims: an ordinal the StatefulSet shrinks past was drained and
# forgotten first (its node holds no slot and no key), so its claim goes with it instead of
# billing storage and coming back with a stale node id if the ordinal is re-used; a pod
# merely deleted or restarted keeps its claim (its keys come back), and so does the data
# of a deleted RedisCluster (deleting a claim is left to the user).
CLAIM_RETENTION = {"whenDeleted": "Retain", "whenScaled": "Delete"}


def labels(name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "redis",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "headroom",
        "headroom.dev/kind": "redis",
        CLUSTER_LABEL: name,
    }


def selector(name: str) -> str:
    """The label selector of the cluster's pods (``status.selector`` for ``/scale``)."""
    return f"{CLUSTER_LABEL}={name}"


def headless_service_name(name: str) -> str:
    return f"{name}-nodes"


def auth_secret_name(name: str) -> str:
    """The Secret the operator owns with the cluster's password (and its redis.conf)."""
    return f"{name}-redis-auth"


def auth_secret(name: str, password: str, owner: dict[str, Any]) -> dict[str, Any]:
    """The cluster's auth Secret: ``password`` and the ``redis.conf`` lines that require it."""
    meta = _meta(auth_secret_name(name), name, owner)
    meta["labels"][MANAGED_BY_LABEL] = "headroom"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "data": {
            PASSWORD_KEY: _b64(password),
            AUTH_CONF_KEY: _b64(redis_auth_config(password)),
        },
    }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _meta(name: str, cluster: str, owner: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "labels": labels(cluster), "ownerReferences": [dict(owner)]}


def headless_service(name: str, spec: RedisClusterSpec, owner: dict[str, Any]) -> dict[str, Any]:
    """One DNS record per pod, ready or not (nodes gossip before they serve)."""
    bus = spec.port + BUS_OFFSET
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(headless_service_name(name), name, owner),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {CLUSTER_LABEL: name},
            "ports": [
                {"name": "redis", "port": spec.port, "targetPort": spec.port},
                {
                    "name": "bus",
                    "port": bus,
                    "targetPort": bus,
                },
            ],
        },
    }


def client_service(name: str, spec: RedisClusterSpec, owner: dict[str, Any]) -> dict[str, Any]:
    """What applications point a cluster-aware client at (any node answers CLUSTER SLOTS)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, name, owner),
        "spec": {
            "selector": {CLUSTER_LABEL: name},
            "ports": [{"name": "redis", "port": spec.port, "targetPort": spec.port}],
        },
    }


def disruption_budget(name: str, owner: dict[str, Any]) -> dict[str, Any]:
    """At most one node down by eviction at a time: a master and its replica never together."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(name, name, owner),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {CLUSTER_LABEL: name}}},
    }


def redis_args(spec: RedisClusterSpec) -> list[str]:
    if spec.tls is None:
        ports = ["--port", str(spec.port)]
    else:
        # TLS only: the plain port is closed; the bus and replication use TLS too. Clients
        # verify the nodes; nodes accept clients without a certificate (the password
        # authenticates them).
        ports = [
            "--port", "0",
            "--tls-port", str(spec.port),
            "--tls-cert-file", f"{TLS_DIR}/tls.crt",
            "--tls-key-file", f"{TLS_DIR}/tls.key",
            "--tls-ca-cert-file", f"{TLS_DIR}/ca.crt",
            "--tls-cluster", "yes",
            "--tls-replication", "yes",
            "--tls-auth-clients", "optional",
        ]  # fmt: skip
    args = [
        *ports,
        *CLUSTER_NODE_ARGS,
        "--cluster-announce-ip", "$(POD_IP)",
        "--maxmemory", redis_maxmemory(spec.maxmemory),
        "--maxmemory-policy", "noeviction",
        # With a volume, a lost pod comes back with its data (AOF) and its node id
        # (nodes.conf); without one there is nothing to come back to.
        "--appendonly", "yes" if spec.persistence is not None else "no",
    ]  # fmt: skip
    return args


def readiness_command(spec: RedisClusterSpec) -> list[str]:
    """PING with the password from ``REDISCLI_AUTH``; redis-cli exits 0 on an error reply
    (NOAUTH), so only a PONG counts."""
    tls = f"--tls --cacert {TLS_DIR}/ca.crt " if spec.tls is not None else ""
    return ["sh", "-c", f"redis-cli {tls}-p {spec.port} ping | grep -qx PONG"]


def statefulset(
    name: str, spec: RedisClusterSpec, owner: dict[str, Any], *, replicas: int
) -> dict[str, Any]:
    """One pod per Redis node; ``replicas`` is only the size at creation (the provisioner
    owns it afterwards)."""
    secret = auth_secret_name(name)
    env: list[dict[str, Any]] = [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        # redis-cli (the probe, kubectl exec) reads the password from here, not from argv.
        {
            "name": "REDISCLI_AUTH",
            "valueFrom": {"secretKeyRef": {"name": secret, "key": PASSWORD_KEY}},
        },
    ]
    container: dict[str, Any] = {
        "name": "redis",
        "image": spec.image,
        "command": ["redis-server", f"{AUTH_DIR}/{AUTH_CONF_KEY}"],
        "workingDir": "/data",  # nodes.conf and dumps land on the data volume
        "args": redis_args(spec),
        "env": env,
        "ports": [
            {"name": "redis", "containerPort": spec.port},
            {"name": "bus", "containerPort": spec.port + BUS_OFFSET},
        ],
        "readinessProbe": {"exec": {"command": readiness_command(spec)}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": spec.port}, "periodSeconds": 10},
        "volumeMounts": [
            {"name": "data", "mountPath": "/data"},
            {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True},
        ],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 999,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    # The data volume is the pod's claim when spec.persistence asks for one (below).
    volumes: list[dict[str, Any]] = (
        [] if spec.persistence is not None else [{"name": "data", "emptyDir": {}}]
    )
    volumes += [
        {
            "name": "auth",
            "secret": {
                "secretName": secret,
                "items": [{"key": AUTH_CONF_KEY, "path": AUTH_CONF_KEY}],
                "defaultMode": 0o400,
            },
        },
    ]
    if spec.tls is not None:
        keys = (spec.tls.cert_key, spec.tls.key_key, spec.tls.ca_key)
        volumes.append(
            {
                "name": "tls",
                "secret": {
                    "secretName": spec.tls.secret_name,
                    "items": [
                        {"key": key, "path": path}
                        for key, path in zip(keys, TLS_FILES, strict=True)
                    ],
                    "defaultMode": 0o400,
                },
            }
        )
        container["volumeMounts"].append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
    if spec.resources:
        container["resources"] = spec.resources
    claims: list[dict[str, Any]] = []
    if spec.persistence is not None:
        claim_spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": spec.persistence.size}},
        }
        if spec.persistence.storage_class_name:
            claim_spec["storageClassName"] = spec.persistence.storage_class_name
        claims = [{"metadata": {"name": "data", "labels": labels(name)}, "spec": claim_spec}]
    sts: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(name, name, owner),
        "spec": {
            "replicas": replicas,
            "serviceName": headless_service_name(name),
            # Nodes are independent until Headroom MEETs them; start them all at once.
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {CLUSTER_LABEL: name}},
            "template": {
                "metadata": {"labels": labels(name)},
                "spec": {
                    "containers": [container],
                    "volumes": volumes,
                    "securityContext": {
                        "fsGroup": 999,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "terminationGracePeriodSeconds": 30,
                },
            },
        },
    }
    if claims:
        sts["spec"]["volumeClaimTemplates"] = claims
        sts["spec"]["persistentVolumeClaimRetentionPolicy"] = dict(CLAIM_RETENTION)
    return sts
