"""The kubelet emulator: StatefulSet and Deployment pods, with Redis pods as real processes.

For each workload it keeps Pod objects in the store (StatefulSet names ``NAME-ORDINAL``,
ordered start, scale-down from the highest ordinal); a pod whose container is Redis (image
containing "redis" or label ``headroom.dev/kind: redis``) runs one real ``redis-server`` on
its own loopback address 127.0.X.N:6379 with the container's args, and becomes Ready once it
answers PING (after AUTH with the container's ``REDISCLI_AUTH``, as its redis-cli probe would).
As the real kubelet does, env ``valueFrom`` (``secretKeyRef``, ``fieldRef``) is resolved and
Secret volumes are written out as files (the container's mount paths in its command and args
are mapped to them), so a password reaches redis-server from a Secret, never from argv; a pod
whose Secret is missing does not start (``CreateContainerConfigError``). Other pods become
Ready after ``startup_delay``. Workload status
(replicas/readyReplicas/availableReplicas/observedGeneration) and PodDisruptionBudget status
(:mod:`tests.harness.disruption`) follow. Started by
:meth:`tests.harness.harness.KubeHarness.start_kubelet`; ``stop()`` kills every process.

A pod is its uid, as on a real node: a container crash restarts the process on the same
address and data; a deleted pod's process is killed, and the pod the StatefulSet creates in
its place (same name, new uid) starts a new process on a new address with an empty data
directory — unless the StatefulSet has ``volumeClaimTemplates``: then the claim
``CLAIM-STS-ORDINAL`` (a PersistentVolumeClaim object, Bound) is a directory that outlives
its pods, and the Redis container's data directory is that volume. With the StatefulSet's
``persistentVolumeClaimRetentionPolicy.whenScaled: Delete`` the claims of an ordinal
scaled away are deleted with its pod (``whenDeleted`` is not emulated: claims outlive a
deleted StatefulSet, the default Retain).
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import logging
import random
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness.disruption import pod_ready, refresh_budgets
from tests.harness.errors import ApiError
from tests.harness.resources import ResourceType
from tests.harness.selectors import selector_matches
from tests.harness.store import Obj, Store, now_rfc3339
from tests.support.procs import kill_group, port_is_free, spawn

log = logging.getLogger(__name__)

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_LABEL = "headroom.dev/kind"
NODE_NAME = "emulated-node"
_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"
_LIVE: set[Kubelet] = set()


@atexit.register
def _stop_all() -> None:
    """Last resort (an interrupted test run): no redis-server outlives the interpreter."""
    for kubelet in list(_LIVE):
        kubelet.stop()


@dataclass
class PodProcess:
    """One running ``redis-server`` for one pod."""

    namespace: str
    pod: str
    uid: str
    ip: str
    port: int
    workdir: Path
    argv: list[str]
    proc: subprocess.Popen[bytes]
    password: str | None = None  # REDISCLI_AUTH of the container: what its probe sends
    tls_ca: str | None = None  # with --tls-port: the CA its probe verifies the node with
    log_offset: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def addr(self) -> str:
        return f"{self.ip}:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None


def ip_of(n: int) -> str:
    return f"127.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def ping(
    ip: str,
    port: int,
    timeout: float = 0.2,
    password: str | None = None,
    tls_ca: str | None = None,
) -> bool:
    """PING, after AUTH when the container's probe has a password, over TLS (the chain
    verified against ``tls_ca``, as ``redis-cli --tls --cacert``) when the node serves TLS."""
    try:
        with socket.create_connection((ip, port), timeout=timeout) as raw:
            if tls_ca is None:
                return _auth_ping(raw, password)
            ctx = ssl.create_default_context(cafile=tls_ca)
            ctx.check_hostname = False
            with ctx.wrap_socket(raw) as sock:
                return _auth_ping(sock, password)
    except OSError:
        return False


def _auth_ping(s: socket.socket, password: str | None) -> bool:
    if password is not None:
        s.sendall(_resp("AUTH", password))
        if not s.recv(64).startswith(b"+OK"):
            return False
    s.sendall(b"PING\r\n")
    return s.recv(64).startswith(b"+PONG")


def _resp(*words: str) -> bytes:
    out = [f"*{len(words)}\r\n".encode()]
    for w in words:
        data = w.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class ContainerConfigError(Exception):
    """A container's env or volume names a Secret (key) that does not exist."""


def redis_container(template: Obj) -> Obj | None:
    """The Redis container of a pod (template), if it is a Redis pod."""
    containers = (template.get("spec") or {}).get("containers") or []
    labels = (template.get("metadata") or {}).get("labels") or {}
    for c in containers:
        if "redis" in str(c.get("image", "")) and "exporter" not in str(c.get("image", "")):
            return dict(c)
    if labels.get(REDIS_LABEL) == "redis" and containers:
        return dict(containers[0])
    return None


def _expand(arg: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion in command and args."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), arg)


def redis_args(
    container: Obj, env: dict[str, str], mounts: dict[str, Path] | None = None
) -> list[str]:
    """The redis-server arguments a container's command/args amount to. A path under a
    mounted volume (``mounts``: mount path -> host dir) is mapped to the host; a config
    file inside the image does not exist here, so it is dropped (its flags must be args)."""
    words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
    if len(words) >= 3 and Path(words[0]).name in ("sh", "bash") and words[1] == "-c":
        words = shlex.split(words[2])
    words = [_map_path(_expand(w, env), mounts or {}) for w in words]
    if words and Path(words[0]).name in ("redis-server", "docker-entrypoint.sh"):
        words = words[1:]
        if words and Path(words[0]).name == "redis-server":
            words = words[1:]
    config = words[0] if words and Path(words[0]).is_file() else None
    while words and not words[0].startswith("--"):
        words = words[1:]
    return [config, *words] if config else words


def _map_path(word: str, mounts: dict[str, Path]) -> str:
    for mount, host in mounts.items():
        if word == mount or word.startswith(mount.rstrip("/") + "/"):
            return str(host / word[len(mount) :].lstrip("/"))
    return word


class Kubelet:
    """Reconciles workloads into pods and pods into processes, on a background thread."""

    def __init__(
        self,
        store: Store,
        workdir: Path,
        *,
        startup_delay: float = 0.0,
        restart_delay: float = 0.2,
        poll_interval: float = 0.1,
        redis_server: str = REDIS_SERVER,
        first_ip: int | None = None,
    ) -> None:
        self.store = store
        self.workdir = workdir
        self.startup_delay = startup_delay
        self.restart_delay = restart_delay
        self.poll_interval = poll_interval
        self.redis_server = redis_server
        # Keyed by pod uid: a re-created pod of the same name is a different pod.
        self.processes: dict[str, PodProcess] = {}
        self.errors: list[str] = []
        self._ips: dict[str, str] = {}
        self._bad_ips: set[str] = set()
        # Pods get 127.0.X.2, .3, ...; a random X keeps concurrent test runs apart (the
        # address is still checked free before use).
        self._next_ip = first_ip if first_ip is not None else 256 * random.randint(1, 250) + 2
        self._fake_ip = 2
        self._restart_at: dict[str, float] = {}
        self._restarts: dict[str, int] = {}
        self._first_seen: dict[str, float] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pods = store.type("", "pods")
        self._sts = store.type("apps", "statefulsets")
        self._deploy = store.type("apps", "deployments")
        self._secrets = store.type("", "secrets")
        self._pvcs = store.type("", "persistentvolumeclaims")
        self._listed: tuple[int, list[Obj]] | None = None  # (resourceVersion, pods)
        # (namespace, pod name) -> the scheduler's message: no node fits until released.
        self._unschedulable: dict[tuple[str, str], str] = {}

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> Kubelet:
        self.workdir.mkdir(parents=True, exist_ok=True)
        _LIVE.add(self)
        self._thread = threading.Thread(target=self._run, daemon=True, name="kubelet")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop and kill every process it started."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        with self._lock:
            procs = list(self.processes.values())
            self.processes.clear()
        for p in procs:
            kill_group(p.proc)
        _LIVE.discard(self)

    def crash(self, namespace: str, pod: str) -> int:
        """Kill a pod's process (SIGKILL); it restarts with the same data dir. Returns the pid."""
        with self._lock:
            p = self.process(namespace, pod)
            if p is None:
                raise KeyError(f"no process for pod {namespace}/{pod}")
            p.proc.kill()
            p.proc.wait(5)
            return p.pid

    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self.processes.values()]

    def process(self, namespace: str, pod: str) -> PodProcess | None:
        """The process of the newest pod by that name (a deleted one may still be stopping)."""
        with self._lock:
            found = [p for p in self.processes.values() if (p.namespace, p.pod) == (namespace, pod)]
            return max(found, key=lambda p: p.started) if found else None

    def unschedulable(self, namespace: str, pod: str, message: str = "") -> None:
        """Keep pod ``pod`` (by name: a re-created one too) Pending as the scheduler would
        when no node fits — PodScheduled=False reason=Unschedulable — until
        :meth:`schedulable`. A pod already running is not touched (it was scheduled)."""
        with self._lock:
            self._unschedulable[(namespace, pod)] = message or (
                "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are "
                "available: 3 No preemption victims found for incoming pod."
            )

    def schedulable(self, namespace: str, pod: str) -> None:
        """Let pod ``pod`` be scheduled and started (it was :meth:`unschedulable`)."""
        with self._lock:
            self._unschedulable.pop((namespace, pod), None)

    def volume_dir(self, namespace: str, claim: str) -> Path:
        """Where the PersistentVolumeClaim ``claim`` keeps its data (outlives its pods)."""
        return self.workdir / namespace / "volumes" / claim

    # ---- loop ------------------------------------------------------------------------
    def _run(self) -> None:
        seen = -1
        while not self._stop.is_set():
            try:
                self.reconcile()
            except ApiError as err:  # a racing client write; the next pass sees it
                log.debug("Kubelet pass hit %s", err.message)
            except Exception as err:  # noqa: BLE001 - keep the kubelet alive, report it
                self.errors.append(f"{type(err).__name__}: {err}")
                log.exception("Kubelet pass failed")
            seen = self.store.wait_for_change(seen, self.poll_interval)
            seen = self.store.resource_version

    def reconcile(self) -> None:
        with self._lock:
            for sts in self.store.list_objects(self._sts, None)[0]:
                self._statefulset(sts)
            for dep in self.store.list_objects(self._deploy, None)[0]:
                self._deployment(dep)
            live = {p["metadata"]["uid"]: p for p in self._all_pods()}
            for uid in list(self.processes):
                pod = live.get(uid)
                if pod is None or pod["metadata"].get("deletionTimestamp"):
                    self._kill(uid)
            for uid, pod in live.items():
                if not pod["metadata"].get("deletionTimestamp"):
                    self._run_pod(uid, pod)
            for sts in self.store.list_objects(self._sts, None)[0]:
                self._workload_status(self._sts, sts)
            for dep in self.store.list_objects(self._deploy, None)[0]:
                self._workload_status(self._deploy, dep)
            refresh_budgets(self.store)

    # ---- workloads -> pods -----------------------------------------------------------
    def _owned(self, owner: Obj) -> list[Obj]:
        uid, ns = owner["metadata"]["uid"], owner["metadata"]["namespace"]
        return [
            p
            for p in self._all_pods()
            if p["metadata"]["namespace"] == ns
            and any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
        ]

    def _all_pods(self) -> list[Obj]:
        """Every pod (read-only), listed again only once the store has changed: a pass asks
        for the pods of each workload twice, and each listing copies every pod."""
        if self._listed is None or self._listed[0] != self.store.resource_version:
            items, rv, _ = self.store.list_objects(self._pods, None)
            self._listed = (rv, items)
        return self._listed[1]

    def _statefulset(self, sts: Obj) -> None:
        if sts["metadata"].get("deletionTimestamp"):
            return
        ns, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        spec = sts.get("spec") or {}
        want = int(spec.get("replicas", 1))
        pods = {p["metadata"]["name"]: p for p in self._owned(sts)}
        ordinals = sorted(
            (int(n.rsplit("-", 1)[1]) for n in pods if re.fullmatch(rf"{re.escape(name)}-\d+", n)),
        )
        retention = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        for ordinal in sorted((o for o in ordinals if o >= want), reverse=True):
            pod_name = f"{name}-{ordinal}"
            self._kill(pods[pod_name]["metadata"]["uid"])
            self._delete_pod(ns, pod_name)
            if retention.get("whenScaled") == "Delete":
                # As the StatefulSet controller does: the claims of an ordinal scaled away
                # go with its pod (kept, the default Retain, for a pod merely deleted).
                for template in spec.get("volumeClaimTemplates") or []:
                    self._drop_claim(ns, f"{template['metadata']['name']}-{name}-{ordinal}")
        parallel = spec.get("podManagementPolicy") == "Parallel"
        for ordinal in range(want):
            pod_name = f"{name}-{ordinal}"
            if pod_name in pods:
                if not parallel and not pod_ready(pods[pod_name]):
                    return  # OrderedReady: the next ordinal waits for this one
                continue
            pod = self._pod_from_template(sts, pod_name)
            labels = pod["metadata"].setdefault("labels", {})
            labels["statefulset.kubernetes.io/pod-name"] = pod_name
            labels["apps.kubernetes.io/pod-index"] = str(ordinal)
            pod["spec"]["hostname"] = pod_name
            if spec.get("serviceName"):
                pod["spec"]["subdomain"] = spec["serviceName"]
            for template in spec.get("volumeClaimTemplates") or []:
                claim = self._claim(sts, template, ordinal)
                pod["spec"]["volumes"] = [
                    v
                    for v in pod["spec"].get("volumes") or []
                    if v.get("name") != template["metadata"]["name"]
                ] + [
                    {
                        "name": template["metadata"]["name"],
                        "persistentVolumeClaim": {"claimName": claim},
                    }
                ]
            self.store.create(self._pods, ns, pod, internal=True)
            if not parallel:
                return

    def _deployment(self, dep: Obj) -> None:
        if dep["metadata"].get("deletionTimestamp"):
            return
        ns = dep["metadata"]["namespace"]
        want = int((dep.get("spec") or {}).get("replicas", 1))
        pods = sorted(self._owned(dep), key=lambda p: p["metadata"]["creationTimestamp"])
        for pod in pods[want:][::-1]:
            self._kill(pod["metadata"]["uid"])
            self._delete_pod(ns, pod["metadata"]["name"])
        template = (dep.get("spec") or {}).get("template") or {}
        digest = hashlib.sha1(repr(template).encode()).hexdigest()[:10]
        tag = "".join(_SUFFIX[int(c, 16) % len(_SUFFIX)] for c in digest)
        for _ in range(want - len(pods)):
            suffix = "".join(random.choices(_SUFFIX, k=5))
            pod = self._pod_from_template(dep, f"{dep['metadata']['name']}-{tag}-{suffix}")
            pod["metadata"].setdefault("labels", {})["pod-template-hash"] = tag
            self.store.create(self._pods, ns, pod, internal=True)

    def _pod_from_template(self, owner: Obj, pod_name: str) -> Obj:
        template = (owner.get("spec") or {}).get("template") or {}
        tmeta = template.get("metadata") or {}
        spec = dict(template.get("spec") or {})
        spec["nodeName"] = NODE_NAME
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": owner["metadata"]["namespace"],
                "labels": dict(tmeta.get("labels") or {}),
                "annotations": dict(tmeta.get("annotations") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": owner["apiVersion"],
                        "kind": owner["kind"],
                        "name": owner["metadata"]["name"],
                        "uid": owner["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
            "status": {
                "phase": "Pending",
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}
                ],
            },
        }

    def _claim(self, sts: Obj, template: Obj, ordinal: int) -> str:
        """Make the claim ``CLAIM-STS-ORDINAL`` exist (Bound; kept when pods and set go)."""
        ns = sts["metadata"]["namespace"]
        claim = f"{template['metadata']['name']}-{sts['metadata']['name']}-{ordinal}"
        if self.store.try_get(self._pvcs, ns, claim) is None:
            labels = dict(((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
            pvc_spec = dict(template.get("spec") or {})
            self.store.create(
                self._pvcs,
                ns,
                {
                    "metadata": {"name": claim, "namespace": ns, "labels": labels},
                    "spec": pvc_spec,
                    "status": {
                        "phase": "Bound",
                        "accessModes": pvc_spec.get("accessModes") or ["ReadWriteOnce"],
                        "capacity": ((pvc_spec.get("resources") or {}).get("requests") or {}),
                    },
                },
                internal=True,
            )
        self.volume_dir(ns, claim).mkdir(parents=True, exist_ok=True)
        return claim

    def _drop_claim(self, ns: str, claim: str) -> None:
        """Delete the PersistentVolumeClaim ``claim`` and the data its volume held."""
        self._delete(self._pvcs, ns, claim)
        shutil.rmtree(self.volume_dir(ns, claim), ignore_errors=True)

    def _delete_pod(self, ns: str, name: str) -> None:
        self._delete(self._pods, ns, name)

    def _delete(self, resource: ResourceType, ns: str, name: str) -> None:
        """Delete an object the store may already have lost (gone: nothing to do)."""
        try:
            self.store.delete(resource, ns, name)
        except ApiError as err:
            if err.code != 404:
                raise

    # ---- pods -> processes -----------------------------------------------------------
    def _allocate_ip(self, key: str) -> str:
        ip = self._ips.get(key)
        if ip is not None and ip not in self._bad_ips:
            return ip
        used = set(self._ips.values()) | self._bad_ips
        while True:
            n = self._next_ip
            self._next_ip += 1
            ip = ip_of(n)
            if n & 255 in (0, 255) or ip in used:
                continue
            if port_is_free(ip, 6379) and port_is_free(ip, 16379):
                self._ips[key] = ip
                return ip

    def _run_pod(self, key: str, pod: Obj) -> None:
        held = self._unschedulable.get((pod["metadata"]["namespace"], pod["metadata"]["name"]))
        if held is not None and key not in self.processes:
            self._pending_unschedulable(pod, held)
            return
        container = redis_container(pod)
        if container is None:
            self._fake_pod(key, pod)
            return
        proc = self.processes.get(key)
        if proc is not None and not proc.alive():
            never_ready = not pod_ready(pod)
            self.processes.pop(key)
            self._restarts[key] = self._restarts.get(key, 0) + 1
            self._restart_at[key] = time.monotonic() + self.restart_delay
            with open(proc.workdir / "redis.log", "rb") as f:
                f.seek(proc.log_offset)
                log_text = f.read().decode(errors="replace")
            if never_ready and "Address already in use" in log_text:
                self._bad_ips.add(proc.ip)  # another test took the address first
            self._set_pod_status(pod, proc.ip, ready=False, container=container, running=False)
            return
        if proc is None:
            if time.monotonic() < self._restart_at.get(key, 0.0):
                return
            try:
                proc = self._spawn(key, pod, container)
            except ContainerConfigError as err:
                self._restart_at[key] = time.monotonic() + self.restart_delay
                self._config_error(pod, str(err))
                return
        if not pod_ready(pod) or pod["status"].get("podIP") != proc.ip:
            if ping(proc.ip, proc.port, password=proc.password, tls_ca=proc.tls_ca):
                self._set_pod_status(pod, proc.ip, ready=True, container=container, running=True)
            elif pod["status"].get("phase") != "Running" or pod_ready(pod):
                self._set_pod_status(pod, proc.ip, ready=False, container=container, running=True)

    def _data_dir(self, pod: Obj, container: Obj) -> Path:
        """The pod's volume when a claim is mounted into the container, else its own empty
        directory (an emptyDir / the container's writable layer: gone with the pod)."""
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        mounted = {m.get("name") for m in container.get("volumeMounts") or []}
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            claim = str((volume.get("persistentVolumeClaim") or {}).get("claimName") or "")
            if claim and volume.get("name") in mounted:
                return self.volume_dir(ns, claim)
        return self.workdir / str(ns) / f"{name}-{str(pod['metadata']['uid'])[:8]}"

    def _spawn(self, key: str, pod: Obj, container: Obj) -> PodProcess:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        ip = self._allocate_ip(key)
        workdir = self._data_dir(pod, container)
        workdir.mkdir(parents=True, exist_ok=True)
        env = {"POD_NAME": name, "POD_NAMESPACE": ns, "HOSTNAME": name}
        env.update(self._env(ns, pod, container, ip))
        env["POD_IP"] = ip
        mounts = self._mount_secrets(ns, pod, container)
        args = redis_args(container, env, mounts)
        port = 6379
        tls_ca = None
        if "--tls-port" in args:  # TLS only (with --port 0)
            port = int(args[args.index("--tls-port") + 1])
            if "--tls-ca-cert-file" in args:
                tls_ca = args[args.index("--tls-ca-cert-file") + 1]
        elif "--port" in args:
            port = int(args[args.index("--port") + 1])
        else:
            args += ["--port", str(port)]
        argv = [
            self.redis_server,
            *args,
            "--bind",
            ip,
            "--dir",
            str(workdir),
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]
        log_file = workdir / "redis.log"
        # The log is appended to by every run in this directory: this run's lines start here.
        offset = log_file.stat().st_size if log_file.exists() else 0
        proc = PodProcess(
            ns,
            name,
            key,
            ip,
            port,
            workdir,
            argv,
            spawn(argv, workdir, log_file),
            password=env.get("REDISCLI_AUTH") or None,
            tls_ca=tls_ca,
        )
        proc.log_offset = offset
        self.processes[key] = proc
        log.info("Started redis-server pod=%s/%s addr=%s pid=%d", ns, name, proc.addr, proc.pid)
        return proc

    def _secret(self, ns: str, name: str) -> dict[str, bytes]:
        found = self.store.try_get(self._secrets, ns, name) if name else None
        if found is None:
            raise ContainerConfigError(f'secret "{name}" not found')
        data = found.get("data") or {}
        out = {k: base64.b64decode(v) for k, v in data.items()}
        out.update({k: str(v).encode() for k, v in (found.get("stringData") or {}).items()})
        return out

    def _env(self, ns: str, pod: Obj, container: Obj, ip: str) -> dict[str, str]:
        """The container's env with ``valueFrom`` resolved, as the kubelet does."""
        fields = {
            "status.podIP": ip,
            "metadata.name": pod["metadata"]["name"],
            "metadata.namespace": ns,
            "spec.nodeName": NODE_NAME,
        }
        env: dict[str, str] = {}
        for e in container.get("env") or []:
            source = e.get("valueFrom") or {}
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                try:
                    data = self._secret(ns, ref.get("name", ""))
                    if ref.get("key") not in data:
                        raise ContainerConfigError(
                            f"couldn't find key {ref.get('key')} in Secret {ns}/{ref.get('name')}"
                        )
                except ContainerConfigError:
                    if ref.get("optional"):
                        continue
                    raise
                env[e["name"]] = data[ref["key"]].decode()
            elif "fieldRef" in source:
                env[e["name"]] = fields.get(source["fieldRef"].get("fieldPath", ""), "")
            else:
                env[e["name"]] = _expand(str(e.get("value", "")), env)
        return env

    def _mount_secrets(self, ns: str, pod: Obj, container: Obj) -> dict[str, Path]:
        """Write the pod's Secret volumes out as files; mount path -> host dir."""
        volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
        mounts: dict[str, Path] = {}
        for m in container.get("volumeMounts") or []:
            secret = (volumes.get(m.get("name")) or {}).get("secret")
            if secret is None:
                continue
            data = self._secret(ns, secret.get("secretName", ""))
            items = secret.get("items") or [{"key": k, "path": k} for k in data]
            host = self.workdir / "secret-volumes" / ns / str(pod["metadata"]["uid"]) / m["name"]
            shutil.rmtree(host, ignore_errors=True)
            host.mkdir(parents=True)
            for item in items:
                if item["key"] not in data:
                    raise ContainerConfigError(
                        f"couldn't find key {item['key']} in Secret {ns}/{secret['secretName']}"
                    )
                path = host / item["path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data[item["key"]])
                # The owner bits of the mode (the test user owns the file, as root would).
                mode = int(item.get("mode", secret.get("defaultMode", 0o644)))
                path.chmod((mode & 0o700) | 0o400)
            mounts[m["mountPath"]] = host
        return mounts

    def _kill(self, key: str) -> None:
        proc = self.processes.pop(key, None)
        if proc is not None:
            kill_group(proc.proc)
            self._ips.pop(key, None)
            log.info("Stopped redis-server pod=%s/%s pid=%d", proc.namespace, proc.pod, proc.pid)

    def _config_error(self, pod: Obj, message: str) -> None:
        """The pod cannot start until its Secret exists: Pending, waiting, with the reason."""
        status = dict(pod.get("status") or {})
        waiting = {"reason": "CreateContainerConfigError", "message": message}
        status["containerStatuses"] = [
            {
                "name": c.get("name", "main"),
                "image": c.get("image", ""),
                "imageID": "",
                "ready": False,
                "started": False,
                "state": {"waiting": waiting},
                "restartCount": 0,
            }
            for c in (pod.get("spec") or {}).get("containers") or []
        ]
        if status == pod.get("status"):
            return
        self._set_status(pod, status)

    def _set_status(self, pod: Obj, status: Obj) -> None:
        """Write ``pod``'s status (a pod deleted meanwhile is left alone)."""
        try:
            self.store.mutate(
                self._pods,
                pod["metadata"]["namespace"],
                pod["metadata"]["name"],
                lambda p: p.__setitem__("status", status),
                subresource="status",
            )
        except ApiError as err:
            if err.code != 404:
                raise

    def _pending_unschedulable(self, pod: Obj, message: str) -> None:
        """Pending with PodScheduled=False reason=Unschedulable, as kube-scheduler says it."""
        old = dict(pod.get("status") or {})
        scheduled: Obj = next(
            (c for c in old.get("conditions") or () if c.get("type") == "PodScheduled"), {}
        )
        status: Obj = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastTransitionTime": (
                        scheduled.get("lastTransitionTime")
                        if scheduled.get("status") == "False"
                        else now_rfc3339()
                    ),
                }
            ],
        }
        if status == old:
            return
        self._set_status(pod, status)

    def _fake_pod(self, key: str, pod: Obj) -> None:
        if pod_ready(pod):
            return
        ip = self._ips.get(key)
        if ip is None:
            ip = f"10.244.{(self._fake_ip >> 8) & 255}.{self._fake_ip & 255}"
            self._fake_ip += 1
            self._ips[key] = ip
        # Seen-at on a monotonic clock: creationTimestamp has only whole seconds.
        seen = self._first_seen.setdefault(pod["metadata"]["uid"], time.monotonic())
        ready = time.monotonic() - seen >= self.startup_delay
        self._set_pod_status(pod, ip, ready=ready, container=None, running=True)

    def _set_pod_status(
        self, pod: Obj, ip: str, *, ready: bool, container: Obj | None, running: bool
    ) -> None:
        key = pod["metadata"]["uid"]
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        status = dict(pod.get("status") or {})
        flag = "True" if ready else "False"
        old_conditions = {c["type"]: c for c in status.get("conditions") or []}

        def cond(type_: str, value: str) -> Obj:
            old = old_conditions.get(type_)
            if old is not None and old.get("status") == value:
                return dict(old)
            return {"type": type_, "status": value, "lastTransitionTime": now_rfc3339()}

        status.update(
            {
                "phase": "Running" if running else status.get("phase", "Running"),
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "hostIP": "127.0.0.1",
                "startTime": status.get("startTime") or now_rfc3339(),
                "conditions": [
                    cond("Initialized", "True"),
                    cond("Ready", flag),
                    cond("ContainersReady", flag),
                    cond("PodScheduled", "True"),
                ],
            }
        )
        statuses = []
        for c in (pod.get("spec") or {}).get("containers") or []:
            proc = self.processes.get(key)
            state: Obj = (
                {"running": {"startedAt": status["startTime"]}}
                if running
                else {"waiting": {"reason": "CrashLoopBackOff"}}
            )
            statuses.append(
                {
                    "name": c.get("name", "main"),
                    "image": c.get("image", ""),
                    "imageID": "",
                    "ready": ready,
                    "started": running,
                    "state": state,
                    "restartCount": self._restarts.get(key, 0),
                    "containerID": f"emulated://{proc.pid}" if proc and container else "",
                }
            )
        status["containerStatuses"] = statuses
        if status == pod.get("status"):
            return
        try:
            self.store.mutate(
                self._pods, ns, name, lambda p: _same_pod(p, key, status), subresource="status"
            )
        except ApiError as err:
            if err.code != 404:
                raise

    def _workload_status(self, rt: Any, owner: Obj) -> None:
        pods = [p for p in self._owned(owner) if not p["metadata"].get("deletionTimestamp")]
        spec = owner.get("spec") or {}
        if spec.get("selector") and not all(selector_matches(spec["selector"], p) for p in pods):
            pods = [p for p in pods if selector_matches(spec["selector"], p)]
        ready = sum(1 for p in pods if pod_ready(p))
        status: Obj = {
            "observedGeneration": owner["metadata"].get("generation", 1),
            "replicas": len(pods),
        }
        for k, v in (
            ("readyReplicas", ready),
            ("availableReplicas", ready),
            ("currentReplicas", len(pods)),
            ("updatedReplicas", len(pods)),
        ):
            if v:
                status[k] = v
        if rt is self._deploy and len(pods) - ready:
            status["unavailableReplicas"] = len(pods) - ready
        if status == owner.get("status"):
            return
        ns, name = owner["metadata"]["namespace"], owner["metadata"]["name"]
        try:
            self.store.mutate(
                rt, ns, name, lambda o: o.__setitem__("status", status), subresource="status"
            )
        except ApiError as err:
            if err.code != 404:
                raise


def _same_pod(pod: Obj, uid: str, status: Obj) -> None:
    """Write ``status`` only onto the pod it was computed for (a UID precondition)."""
    if pod["metadata"]["uid"] != uid:
        raise ApiError(409, "Conflict", f"the pod was replaced (uid {uid} is gone)")
    pod["status"] = status
