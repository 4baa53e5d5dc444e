"""End-to-end support for the operator suites: an emulated cluster, real redis pods, and
``headroom operator run`` as real subprocesses.

The operator processes talk to the API emulator over HTTP through a kubeconfig
with the operator ServiceAccount's token; the tests read and write with an admin
client. :class:`PodCluster` lets the resharder tests' data helpers
(``tests/redis/data.py``) load, checksum and hammer the cluster the pods form.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import redis
import urllib3
from kubernetes import client

from headroom.controller.provisioning.statefulset import REMOVED_ANNOTATION
from tests.harness.harness import KubeHarness
from tests.harness.kubelet import Kubelet
from tests.support.image import operator_argv, remove_container

GROUP, VERSION, PLURAL = "headroom.dev", "v1alpha1", "redisclusters"
NS = "headroom"  # the chart's release namespace: the operator watches its own
HEADROOM = str(Path(sys.executable).with_name("headroom"))

T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float, what: str, poll: float = 0.2) -> T:
    """Poll ``check`` until it returns something truthy; fail the test with ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as err:  # noqa: BLE001 - a poll may race a restart
            last = err
        else:
            if last:
                return last  # type: ignore[no-any-return]
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@dataclass
class PodNode:
    host: str
    port: int
    password: str | None = None  # the pod's REDISCLI_AUTH (from the cluster's auth Secret)

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, socket_timeout=5, password=self.password)


@dataclass
class PodCluster:
    """The redis pods of one RedisCluster, shaped like ``RedisTestCluster`` for data helpers."""

    kubelet: Kubelet
    namespace: str
    name: str
    apps: Any = None  # AppsV1Api: leave out the pods of ordinals the operator removed
    _removed: set[str] = field(default_factory=set, repr=False)  # as last read

    @property
    def removed(self) -> set[str]:
        """Pods of ordinals the operator removed (``headroom.dev/removed-ordinals``): a
        StatefulSet cannot drop a middle ordinal, so a retired node's pod keeps running
        outside the cluster (say, a deleted pod that came back after its replacement).
        While the API server is down (tests take it down) the last answer stands: the
        redis pods keep running, and a watcher of them must not stop."""
        if self.apps is None:
            return set()
        try:
            sts = self.apps.read_namespaced_stateful_set(self.name, self.namespace)
        except client.ApiException as err:
            if err.status == 404:  # not formed yet, or deleted
                return set()
            if err.status and err.status < 500:
                raise
            return set(self._removed)
        except (urllib3.exceptions.HTTPError, OSError):
            return set(self._removed)
        marked = (sts.metadata.annotations or {}).get(REMOVED_ANNOTATION, "")
        self._removed = {f"{self.name}-{o}" for o in marked.split(",") if o.strip().isdigit()}
        return set(self._removed)

    @property
    def nodes(self) -> list[PodNode]:
        removed = self.removed
        procs = sorted(
            (
                p
                for p in list(self.kubelet.processes.values())
                if p.namespace == self.namespace
                and p.pod.startswith(f"{self.name}-")
                and p.pod not in removed
                and p.alive()
            ),
            key=lambda p: (p.pod, p.started),
        )
        return [PodNode(p.ip, p.port, p.password) for p in procs]

    @property
    def seed(self) -> str:
        return self.nodes[0].addr

    @property
    def password(self) -> str | None:
        return self.nodes[0].password


@dataclass
class OperatorProcess:
    identity: str
    proc: subprocess.Popen[bytes]
    log: Path
    container: str | None = None  # started with podman from the image: the container's name

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        if self.container is not None:
            remove_container(self.container)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def base_url(self) -> str:
        """Its health and metrics server, once its log names the port."""
        found = wait_for(
            lambda: re.search(r"Serving health and metrics port=(\d+)", self.text()), 30, "the port"
        )
        assert found is not None
        return f"http://127.0.0.1:{found[1]}"

    def metrics(self) -> str:
        """What its /metrics serves now."""
        with urllib.request.urlopen(f"{self.base_url()}/metrics", timeout=5) as resp:
            return str(resp.read().decode())


@dataclass
class OperatorEnv:
    """One emulated cluster with the chart's CRDs and RBAC, and the operators started on it."""

    kube: KubeHarness
    kubelet: Kubelet
    workdir: Path
    kubeconfig: Path
    lease: str = "headroom-operator"
    operators: list[OperatorProcess] = field(default_factory=list)

    @property
    def admin(self) -> Any:
        return self._admin

    def __post_init__(self) -> None:
        self._admin = self.kube.api_client()
        # Any: the tests pass plain dicts and read plain dicts.
        self.custom: Any = client.CustomObjectsApi(self._admin)
        self.apps: Any = client.AppsV1Api(self._admin)
        self.core: Any = client.CoreV1Api(self._admin)

    def start_operator(self, identity: str, *extra: str, image: bool = False) -> OperatorProcess:
        """``headroom operator run`` as the chart's ServiceAccount: the venv's command, or
        with ``image`` the operator image's (``podman run``, the kubeconfig mounted)."""
        log = self.workdir / f"operator-{identity}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("KUBECONFIG", None)
        args = [
            "-n", NS, "--host", "127.0.0.1", "--port", "0", "--identity", identity,
            "--lease-name", self.lease, *extra,
        ]  # fmt: skip
        container = f"headroom-{identity}-{os.getpid()}-{len(self.operators)}" if image else None
        if container is not None:
            argv = operator_argv(container, self.kubeconfig, *args)
        else:
            argv = [HEADROOM, "operator", "run", "--kubeconfig", str(self.kubeconfig), *args]
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        op = OperatorProcess(identity, proc, log, container)
        self.operators.append(op)
        return op

    def create_cluster(self, name: str, masters: int = 3, replicas: int = 1, **spec: Any) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RedisCluster",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"masters": masters, "replicasPerMaster": replicas, **spec},
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name))

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def reason(self, name: str, type_: str) -> str | None:
        """The reason of condition ``type_`` (None while it is not set)."""
        return self.condition(name, type_).get("reason")

    def has_reason(self, name: str, type_: str, want: str) -> Callable[[], bool]:
        """A check for :func:`wait_for`: condition ``type_`` has reason ``want`` (until
        then it raises, saying what the condition is: the timeout shows it)."""

        def check() -> bool:
            cond = self.condition(name, type_)
            if cond.get("reason") != want:
                raise AssertionError(f"{type_}: {cond or 'not set'}")
            return True

        return check

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        for cond in self.status(name).get("conditions") or ():
            if cond["type"] == type_:
                return dict(cond)
        return {}

    def scale(self, name: str, masters: int) -> None:
        """Resize through the /scale subresource, as kubectl scale or an autoscaler would."""
        self.custom.patch_namespaced_custom_object_scale(
            GROUP, VERSION, NS, PLURAL, name, {"spec": {"replicas": masters}}
        )

    def ready_with(self, name: str, masters: int) -> Callable[[], bool]:
        def check() -> bool:
            st = self.status(name)
            gen = self.get(name)["metadata"].get("generation")
            return bool(
                st.get("phase") == "Ready"
                and st.get("masters") == masters
                and st.get("observedGeneration") == gen
                and self.condition(name, "Ready").get("status") == "True"
            )

        return check

    def holder(self) -> str:
        """The identity holding the operator's Lease ("" when none)."""
        lease = self.kube.get("coordination.k8s.io/v1", "Lease", self.lease, NS)
        return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")

    def pods(self, name: str) -> PodCluster:
        return PodCluster(self.kubelet, NS, name, self.apps)

    def events(self, name: str) -> list[Any]:
        items = self.core.list_namespaced_event(NS).items
        return [e for e in items if e.involved_object.name == name]

    def close(self) -> None:
        for op in self.operators:
            op.kill()
            # Shown by pytest only when the test failed.
            print(f"----- operator {op.identity} (last 80 lines, repeats folded) -----")
            print("\n".join(_folded(op.text().splitlines())[-80:]))


def _folded(lines: list[str]) -> list[str]:
    """Log lines without those that repeat one of the last few kept (a retry loop's
    hundred requeues would push what led to it out of a failure's tail), with a count."""
    out: list[str] = []
    recent: list[str] = []
    folded = 0
    for line in lines:
        body = line[24:] if line[:4].isdigit() else line  # after "YYYY-mm-dd HH:MM:SS,mmm "
        if body in recent:
            folded += 1
            continue
        if folded:
            out.append(f"    ... {folded} repeated lines folded")
            folded = 0
        out.append(line)
        recent = [*recent[-9:], body]
    if folded:
        out.append(f"    ... {folded} repeated lines folded")
    return out


def slots_of(host: str, port: int, password: str | None = None) -> int:
    c = redis.Redis(
        host=host, port=port, socket_timeout=3, decode_responses=True, password=password
    )
    try:
        for line in str(c.execute_command("CLUSTER", "NODES")).splitlines():
            if "myself" in line:
                parts = line.split()
                return sum(
                    int(r.split("-")[1]) - int(r.split("-")[0]) + 1 if "-" in r else 1
                    for r in parts[8:]
                    if not r.startswith("[")
                )
    finally:
        c.close()
    return 0


def guard_pod_removals(env: OperatorEnv) -> list[str]:
    """Record, at the moment the kubelet stops a redis pod, how many slots it still owned."""
    kubelet = env.kubelet
    owned_at_removal: list[str] = []
    original = kubelet._kill
    lock = threading.Lock()

    def kill(key: str) -> None:
        proc = kubelet.processes.get(key)
        if proc is not None and proc.alive():
            try:
                slots = slots_of(proc.ip, proc.port, proc.password)
            except redis.RedisError as err:
                slots = -1
                owned_at_removal.append(f"{proc.pod}: unreadable at removal ({err})")
            if slots > 0:
                with lock:
                    owned_at_removal.append(f"{proc.pod} owned {slots} slots when removed")
        original(key)

    kubelet._kill = kill  # type: ignore[method-assign]
    return owned_at_removal
