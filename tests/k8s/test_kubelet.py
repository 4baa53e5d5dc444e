"""The kubelet emulator: StatefulSet pods as real redis-server processes on loopback."""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

import pytest
import redis
from kubernetes import client
from kubernetes.client import ApiException

from tests.harness.harness import KubeHarness
from tests.harness.kubelet import Kubelet, ping
from tests.support.procs import until_equal, wait_until
from tests.support.redis_auth import assert_refuses_unauthenticated, cmdlines_with

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

    # A container crash: same pod (uid), same address, same data.
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

    # A deleted pod: the StatefulSet makes a new one of the same name, which is a new pod (a
    # real StatefulSet without volumeClaimTemplates): new process, new address, empty disk.
    uid, pid = pod.metadata.uid, process.pid
    core.delete_namespaced_pod("kv-0", "default")
    wait_until(lambda: not alive(pid), 10, "the deleted pod's process to be killed")
    wait_until(
        lambda: core.read_namespaced_pod("kv-0", "default").metadata.uid != uid,
        10,
        "the StatefulSet to recreate kv-0",
    )
    pod = wait_ready(apps, core, "kv", 1)["kv-0"]
    assert pod.status.pod_ip != ip
    assert pod.status.container_statuses[0].restart_count == 0
    fresh = redis.Redis(host=pod.status.pod_ip, port=6379, socket_timeout=2)
    assert fresh.get("k") is None and fresh.dbsize() == 0
    assert not ping(ip, 6379)  # the old process is gone from the old address
    process = kubelet.process("default", "kv-0")
    assert process is not None and process.pid not in (pid, old_pid)

    apps.delete_namespaced_stateful_set("kv", "default")
    wait_until(lambda: not core.list_namespaced_pod("default").items, 10, "pods to be collected")
    wait_until(lambda: not kubelet.pids(), 10, "the process to stop")
    assert kubelet.errors == []


def with_volume(sts: dict[str, Any], claim: str = "data") -> dict[str, Any]:
    """The StatefulSet with a volumeClaimTemplate mounted at /data in its Redis container."""
    sts["spec"]["volumeClaimTemplates"] = [
        {
            "metadata": {"name": claim},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "standard",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    ]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    container["volumeMounts"] = [{"name": claim, "mountPath": "/data"}]
    return sts


def test_a_volume_claim_outlives_its_pod_with_the_data_and_the_cluster_node_id(
    kube: KubeHarness, kubelet: Kubelet
) -> None:
    api = kube.api_client()
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    args = [*CLUSTER_ARGS[:-4], "--appendonly", "yes", "--appendfsync", "always"]
    apps.create_namespaced_stateful_set("default", with_volume(redis_statefulset("db", 2, args)))
    pods = wait_ready(apps, core, "db", 2)
    claims = {p.metadata.name: p.spec.volumes for p in pods.values()}
    assert [v.persistent_volume_claim.claim_name for v in claims["db-1"]] == ["data-db-1"]
    pvc = core.read_namespaced_persistent_volume_claim("data-db-1", "default")
    assert pvc.status.phase == "Bound" and pvc.spec.storage_class_name == "standard"
    old = pods["db-1"]
    r = redis.Redis(host=old.status.pod_ip, port=6379, socket_timeout=2)
    r.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    node_id = r.execute_command("CLUSTER", "MYID")
    wait_until(lambda: r.set("k", "v") is True, 10, "the one-node cluster to take writes")

    core.delete_namespaced_pod("db-1", "default")
    wait_until(
        lambda: core.read_namespaced_pod("db-1", "default").metadata.uid != old.metadata.uid,
        10,
        "the StatefulSet to recreate db-1",
    )
    new = wait_ready(apps, core, "db", 2)["db-1"]
    assert new.status.pod_ip != old.status.pod_ip  # a new pod, a new address ...
    back = redis.Redis(host=new.status.pod_ip, port=6379, socket_timeout=2)
    assert back.execute_command("CLUSTER", "MYID") == node_id  # ... the same volume
    # (a restarted cluster node answers CLUSTERDOWN until it has checked its own config)
    wait_until(lambda: _get(back, "k") == b"v", 10, "the key back from the volume")
    # The other ordinal's claim is its own: db-0 never saw the key.
    assert redis.Redis(host=pods["db-0"].status.pod_ip, port=6379).dbsize() == 0

    apps.delete_namespaced_stateful_set("db", "default")
    wait_until(lambda: not kubelet.pids(), 10, "the processes to stop")
    claims_left = core.list_namespaced_persistent_volume_claim("default").items
    assert sorted(c.metadata.name for c in claims_left) == ["data-db-0", "data-db-1"]
    assert kubelet.errors == []


def test_a_claim_goes_with_an_ordinal_scaled_away_only_where_the_set_says_so(
    kube: KubeHarness, kubelet: Kubelet
) -> None:
    api = kube.api_client()
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    args = [*CLUSTER_ARGS[:-4], "--appendonly", "yes"]
    deleting = with_volume(redis_statefulset("db", 3, args))
    deleting["spec"]["persistentVolumeClaimRetentionPolicy"] = {
        "whenDeleted": "Retain",
        "whenScaled": "Delete",
    }
    apps.create_namespaced_stateful_set("default", deleting)
    apps.create_namespaced_stateful_set("default", with_volume(redis_statefulset("kv", 2, args)))
    wait_ready(apps, core, "db", 3)
    wait_ready(apps, core, "kv", 2)

    def claims() -> list[str]:
        return sorted(
            c.metadata.name for c in core.list_namespaced_persistent_volume_claim("default").items
        )

    assert claims() == ["data-db-0", "data-db-1", "data-db-2", "data-kv-0", "data-kv-1"]
    assert kubelet.volume_dir("default", "data-db-2").is_dir()
    # A pod merely deleted keeps its claim, whatever the policy: only scaling goes.
    uid = core.read_namespaced_pod("db-1", "default").metadata.uid
    core.delete_namespaced_pod("db-1", "default")
    wait_until(
        lambda: core.read_namespaced_pod("db-1", "default").metadata.uid != uid, 10, "db-1 back"
    )
    pod = wait_ready(apps, core, "db", 3)["db-1"]
    assert "data-db-1" in claims()
    old_id = redis.Redis(host=pod.status.pod_ip, port=6379).execute_command("CLUSTER", "MYID")

    apps.patch_namespaced_stateful_set_scale("db", "default", {"spec": {"replicas": 1}})
    apps.patch_namespaced_stateful_set_scale("kv", "default", {"spec": {"replicas": 1}})
    wait_ready(apps, core, "db", 1)
    wait_ready(apps, core, "kv", 1)
    # whenScaled Delete: the claims (and their data) of ordinals 1 and 2 went with them;
    # the default (Retain) keeps kv-1's.
    kept = ["data-db-0", "data-kv-0", "data-kv-1"]
    wait_until(until_equal(claims, kept), 10, "the scaled-away claims to go")
    assert not kubelet.volume_dir("default", "data-db-2").exists()
    assert kubelet.volume_dir("default", "data-kv-1").is_dir()
    # Scaled up again, the ordinal starts on a new, empty claim.
    apps.patch_namespaced_stateful_set_scale("db", "default", {"spec": {"replicas": 2}})
    pods = wait_ready(apps, core, "db", 2)
    assert "data-db-1" in claims()
    fresh = redis.Redis(host=pods["db-1"].status.pod_ip, port=6379, socket_timeout=2)
    assert fresh.execute_command("CLUSTER", "MYID") != old_id  # not the old node's config
    assert kubelet.errors == []


def _get(r: redis.Redis, key: str) -> Any:
    try:
        return r.get(key)
    except redis.exceptions.ClusterDownError:
        return None


def evict(core: Any, name: str) -> None:
    core.create_namespaced_pod_eviction(
        name,
        "default",
        k8s.V1Eviction(metadata=k8s.V1ObjectMeta(name=name, namespace="default")),
    )


def test_eviction_honours_the_disruption_budget_with_429_when_it_is_spent(
    kube: KubeHarness, kubelet: Kubelet
) -> None:
    api = kube.api_client()
    apps, core, policy = k8s.AppsV1Api(api), k8s.CoreV1Api(api), k8s.PolicyV1Api(api)
    apps.create_namespaced_stateful_set("default", redis_statefulset("ev", 3, CLUSTER_ARGS))
    policy.create_namespaced_pod_disruption_budget(
        "default",
        {
            "metadata": {"name": "ev"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "ev"}}},
        },
    )
    pods = wait_ready(apps, core, "ev", 3)

    def budget() -> Any:
        return policy.read_namespaced_pod_disruption_budget("ev", "default").status

    wait_until(lambda: (budget().disruptions_allowed or 0) == 1, 10, "the budget to allow one")
    status = budget()
    assert (status.current_healthy, status.desired_healthy, status.expected_pods) == (3, 2, 3)
    assert status.observed_generation == 1
    assert [(c.type, c.status) for c in status.conditions] == [("DisruptionAllowed", "True")]
    resources = core.get_api_resources().resources
    (sub,) = [r for r in resources if r.name == "pods/eviction"]
    assert (sub.group, sub.version, sub.kind, sub.verbs) == ("policy", "v1", "Eviction", ["create"])

    old_pid = kubelet.process("default", "ev-0")
    assert old_pid is not None
    evict(core, "ev-0")
    # At once, before ev-0's replacement can be Ready (waiting for the kill first let a
    # fast replacement restore the budget under load): the budget is spent.
    with pytest.raises(ApiException) as exc:
        evict(core, "ev-1")
    wait_until(lambda: not alive(old_pid.pid), 10, "the evicted pod's process to be killed")
    body = json.loads(exc.value.body or "{}")
    assert exc.value.status == 429 and body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    (cause,) = body["details"]["causes"]
    assert cause["reason"] == "DisruptionBudget"
    assert cause["message"].startswith("The disruption budget ev needs 2 healthy pods and has ")
    assert exc.value.headers is not None and exc.value.headers["Retry-After"] == "1"
    assert "ev-1" in ready_pods(core, "ev")  # nothing happened to ev-1

    wait_ready(apps, core, "ev", 3)
    wait_until(lambda: (budget().disruptions_allowed or 0) == 1, 10, "the budget to recover")
    evict(core, "ev-1")  # a drain retries the 429 until the budget allows it
    with pytest.raises(ApiException) as exc:
        evict(core, "nope")
    assert exc.value.status == 404
    new = wait_ready(apps, core, "ev", 3)
    assert new["ev-1"].metadata.uid != pods["ev-1"].metadata.uid
    assert kubelet.errors == []


def test_eviction_without_a_budget_deletes_and_rbac_names_the_subresource(
    kube: KubeHarness, kubelet: Kubelet
) -> None:
    api = kube.api_client()
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    apps.create_namespaced_stateful_set("default", redis_statefulset("nb", 1, CLUSTER_ARGS))
    uid = wait_ready(apps, core, "nb", 1)["nb-0"].metadata.uid
    evict(core, "nb-0")
    wait_until(
        lambda: core.read_namespaced_pod("nb-0", "default").metadata.uid != uid,
        10,
        "nb-0 to be evicted and recreated",
    )
    (record,) = [a for a in kube.audit if a.subresource == "eviction"]
    assert (record.verb, record.resource, record.name, record.code) == (
        "create",
        "pods",
        "nb-0",
        201,
    )


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


def test_secret_env_and_files_reach_redis_server_as_kubernetes_would(
    kube: KubeHarness, kubelet: Kubelet
) -> None:
    """A config file from a Secret volume (the password) and REDISCLI_AUTH from a
    secretKeyRef: the pod waits (CreateContainerConfigError) until the Secret exists, then
    redis-server requires the password, which is on no command line; readiness needs it."""
    api = kube.api_client()
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    password = "kubelet-secret-pw-0123456789"
    sts = redis_statefulset("locked", 1, ["--save", ""])
    container = sts["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["redis-server", "/etc/redis/auth/redis.conf"]
    container["env"] = [
        {
            "name": "REDISCLI_AUTH",
            "valueFrom": {"secretKeyRef": {"name": "locked-auth", "key": "pw"}},
        }
    ]
    container["volumeMounts"] = [{"name": "auth", "mountPath": "/etc/redis/auth"}]
    sts["spec"]["template"]["spec"]["volumes"] = [
        {
            "name": "auth",
            "secret": {
                "secretName": "locked-auth",
                "items": [{"key": "conf", "path": "redis.conf"}],
                "defaultMode": 0o400,
            },
        }
    ]
    apps.create_namespaced_stateful_set("default", sts)

    def waiting_reason() -> str:
        pod = core.read_namespaced_pod("locked-0", "default")
        statuses = pod.status.container_statuses or []
        return (
            str(statuses[0].state.waiting.reason) if statuses and statuses[0].state.waiting else ""
        )

    wait_until(lambda: waiting_reason() == "CreateContainerConfigError", 20, "config error")
    assert kubelet.pids() == []
    conf = f'requirepass "{password}"\nmasterauth "{password}"\n'
    core.create_namespaced_secret(
        "default",
        {
            "metadata": {"name": "locked-auth"},
            "data": {
                "pw": base64.b64encode(password.encode()).decode(),
                "conf": base64.b64encode(conf.encode()).decode(),
            },
        },
    )
    pod = wait_ready(apps, core, "locked", 1)["locked-0"]
    assert_refuses_unauthenticated(pod.status.pod_ip, 6379, password)
    assert not ping(pod.status.pod_ip, 6379, timeout=2)  # a probe without the password fails
    assert cmdlines_with(password, kubelet.pids()) == []
