"""The kubelet emulator: StatefulSet pods as real redis-server processes on loopback."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import redis
from kubernetes import client

from tests.harness.harness import KubeHarness
from tests.harness.kubelet import Kubelet
from tests.support.procs import wait_until

pytestmark = [pytest.mark.k8s, pytest.mark.redis]

k8s: Any = client  # the generated client's Optional-everywhere models add only casts here


def redis_statefulset(name: str, replicas: int, args: list[str]) -> dict[str, Any]:
    labels = {"app": name, "headroom.dev/kind": "redis"}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "redis",
                            "image": "redis:7.0",
                            "command": ["redis-server"],
                            "args": args,
                            "ports": [{"containerPort": 6379, "name": "redis"}],
                        }
                    ]
                },
            },
        },
    }


CLUSTER_ARGS = [
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    "nodes.conf",
    "--maxmemory",
    "64mb",
    "--appendonly",
    "no",
    "--save",
    "",
]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def ready_pods(core: Any, name: str) -> dict[str, Any]:
    pods = core.list_namespaced_pod("default", label_selector=f"app={name}").items
    return {
        p.metadata.name: p
        for p in pods
        if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    }


def wait_ready(apps: Any, core: Any, name: str, count: int, timeout: float = 20) -> dict[str, Any]:
    def done() -> bool:
        sts = apps.read_namespaced_stateful_set(name, "default")
        return bool(
            (sts.status.ready_replicas or 0) == count
            and sts.status.replicas == count
            and len(ready_pods(core, name)) == count
        )

    wait_until(done, timeout, f"{count} ready pods of {name}")
    return ready_pods(core, name)


def test_statefulset_of_redis_pods_scales_through_the_scale_subresource(
    kube: KubeHarness, kubelet: Kubelet
) -> None:
    api = kube.api_client()
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    apps.create_namespaced_stateful_set("default", redis_statefulset("cache", 3, CLUSTER_ARGS))

    pods = wait_ready(apps, core, "cache", 3)
    assert sorted(pods) == ["cache-0", "cache-1", "cache-2"]
    ips = {p.status.pod_ip for p in pods.values()}
    assert len(ips) == 3 and all(ip.startswith("127.") and ip != "127.0.0.1" for ip in ips)
    for name, pod in pods.items():
        assert pod.status.phase == "Running"
        assert pod.metadata.labels["statefulset.kubernetes.io/pod-name"] == name
        assert pod.metadata.labels["headroom.dev/kind"] == "redis"
        (owner,) = pod.metadata.owner_references
        assert (owner.kind, owner.name, owner.controller) == ("StatefulSet", "cache", True)
        r = redis.Redis(host=pod.status.pod_ip, port=6379, socket_timeout=2)
        assert r.ping()
        assert r.config_get("cluster-enabled") == {"cluster-enabled": "yes"}
        assert r.config_get("maxmemory") == {"maxmemory": str(64 * 1024 * 1024)}
        r.close()
    sts = apps.read_namespaced_stateful_set("cache", "default")
    assert sts.status.observed_generation == sts.metadata.generation
    assert sts.status.available_replicas == 3
    pids = set(kubelet.pids())
    assert len(pids) == 3 and all(alive(p) for p in pids)

    apps.patch_namespaced_stateful_set_scale("cache", "default", {"spec": {"replicas": 5}})
    pods = wait_ready(apps, core, "cache", 5)
    assert sorted(pods) == [f"cache-{i}" for i in range(5)]
    assert len({p.status.pod_ip for p in pods.values()}) == 5
    for pod in pods.values():
        assert redis.Redis(host=pod.status.pod_ip, port=6379, socket_timeout=2).ping()
    pids |= set(kubelet.pids())
    assert len(pids) == 5

    scale = apps.read_namespaced_stateful_set_scale("cache", "default")
    scale.spec.replicas = 2
    apps.replace_namespaced_stateful_set_scale("cache", "default", scale)
    pods = wait_ready(apps, core, "cache", 2)
    assert sorted(pods) == ["cache-0", "cache-1"]
    assert len(kubelet.pids()) == 2
    gone = pids - set(kubelet.pids())
    assert len(gone) == 3
    wait_until(lambda: not any(alive(p) for p in gone), 10, "scaled-in redis processes to exit")

    kube.close()  # what the fixture does at teardown, also when a test fails
    wait_until(lambda: not any(alive(p) for p in pids), 10, "every redis process to exit")


def test_crashed_pod_restarts_with_its_data_and_deleted_pod_is_recreated(
    kube: KubeHarness, kubelet: Kubelet
) -> None:
    api = kube.api_client()
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    args = ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
    apps.create_namespaced_stateful_set("default", redis_statefulset("kv", 1, args))
    pod = wait_ready(apps, core, "kv", 1)["kv-0"]
    ip = pod.status.pod_ip
    redis.Redis(host=ip, port=6379, socket_timeout=2).set("k", "v")

    old_pid = kubelet.crash("default", "kv-0")
    assert not alive(old_pid)
    wait_until(
        lambda: (
            core.read_namespaced_pod("kv-0", "default").status.container_statuses[0].restart_count
            == 1
        ),
        10,
        "the restart to be counted",
    )
    pod = wait_ready(apps, core, "kv", 1)["kv-0"]
    assert pod.status.pod_ip == ip
    assert redis.Redis(host=ip, port=6379, socket_timeout=2).get("k") == b"v"
    process = kubelet.process("default", "kv-0")
    assert process is not None and process.pid != old_pid

    uid = pod.metadata.uid
    core.delete_namespaced_pod("kv-0", "default")
    wait_until(
        lambda: core.read_namespaced_pod("kv-0", "default").metadata.uid != uid,
        10,
        "the StatefulSet to recreate kv-0",
    )
    pod = wait_ready(apps, core, "kv", 1)["kv-0"]
    assert redis.Redis(host=pod.status.pod_ip, port=6379, socket_timeout=2).get("k") == b"v"

    apps.delete_namespaced_stateful_set("kv", "default")
    wait_until(lambda: not core.list_namespaced_pod("default").items, 10, "pods to be collected")
    wait_until(lambda: not kubelet.pids(), 10, "the process to stop")
    assert kubelet.errors == []


def test_non_redis_pods_become_ready_after_the_startup_delay(
    kube: KubeHarness, kubelet: Kubelet
) -> None:
    kubelet.startup_delay = 1.0
    api = kube.api_client()
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    labels = {"app": "web"}
    started = time.monotonic()
    apps.create_namespaced_deployment(
        "default",
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                },
            },
        },
    )
    wait_until(lambda: len(core.list_namespaced_pod("default").items) == 2, 5, "two pods")
    dep = apps.read_namespaced_deployment("web", "default")
    assert not dep.status.ready_replicas
    wait_until(
        lambda: apps.read_namespaced_deployment("web", "default").status.ready_replicas == 2,
        10,
        "the deployment to become ready",
    )
    assert time.monotonic() - started >= 1.0
    assert kubelet.pids() == []  # no process for a non-Redis pod
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 1}})
    wait_until(lambda: len(core.list_namespaced_pod("default").items) == 1, 5, "one pod")
