"""Local provisioner: Redis Cluster nodes as ``redis-server`` processes on loopback.

Implements :class:`headroom.controller.redis.nodes.NodeProvisioner` for the
embedded default (``headroom local ...`` and ``headroom demo``). Every node
lives in its own folder under a state dir; the state (ports, pids, node ids,
the asked-for cluster shape) is one JSON file there, so separate CLI
invocations (``up``, ``scale``, ``status``, ``down``) share it. Processes are
daemonised, so they outlive the command that started them; a pid is trusted
only while ``/proc`` says it is still a ``redis-server`` on the node's port,
so a stale pid or pidfile never gets a stranger killed.

Nodes require a password (``requirepass``/``masterauth``), generated per state dir
and kept only in owner-readable files there: ``password`` for Headroom's own
connections and ``redis-auth.conf``, the config file every redis-server reads, so
the password is never on a command line (``/proc/<pid>/cmdline``). Protected mode
stays on.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headroom.controller.redis.connection import (
    NodeAddr,
    RedisAuth,
    cmd,
    generate_password,
    make_connect,
    redis_auth_config,
)
from headroom.controller.redis.nodes import CLUSTER_NODE_ARGS, NodeInfo
from headroom.policies.errors import ClusterError, InputError, ProvisioningError

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
PASSWORD_FILE = "password"
AUTH_CONF = "redis-auth.conf"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_BASE_PORT = 7300  # clear of the 7000-7005 of the Redis Cluster tutorial
BUS_PORT_OFFSET = 10000  # Redis Cluster's bus listens on port + 10000
_STATE_VERSION = 1


@dataclass(frozen=True)
class LocalClusterSpec:
    """The cluster shape last asked for, kept with the state so ``scale`` remembers replicas."""

    masters: int
    replicas: int


@dataclass(frozen=True)
class LocalNodeProcess:
    """A node as the local provisioner sees it: its process, not its cluster role."""

    info: NodeInfo
    workdir: Path
    pid: int | None  # None when no live redis-server answers for this node

    @property
    def running(self) -> bool:
        return self.pid is not None


def port_in_use(host: str, port: int) -> bool:
    """True if ``port`` (or its cluster-bus port) cannot be bound on ``host``."""
    for p in (port, port + BUS_PORT_OFFSET):
        if p >= 65536:
            return True
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            # Like redis-server itself: a port in TIME_WAIT is free, a listener is not.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, p))
            except OSError:
                return True
    return False


def _pid_is_node(pid: int, port: int) -> bool:
    """Whether ``pid`` is a live (not zombie) redis-server serving ``port``."""
    proc = Path("/proc") / str(pid)
    if not Path("/proc/self").exists():  # no procfs: the best we can do is "pid exists"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    if state in ("Z", "X"):
        return False
    # redis-server rewrites its title to "redis-server HOST:PORT [cluster]".
    return "redis" in cmdline and f":{port}" in cmdline


class LocalProvisioner:
    """Starts and stops cluster-enabled ``redis-server`` processes under ``state_dir``.

    Create a new state dir with :meth:`create`, reopen it with :meth:`open`.
    Every state change is a locked read-modify-write of the JSON file, so two
    processes (a CLI command and ``status`` beside it) never lose an update.
    """

    def __init__(self, state_dir: Path, *, start_timeout: float = 15.0) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.start_timeout = start_timeout
        self._thread_lock = threading.RLock()
        state = self._read()
        self.host: str = state["host"]
        self.base_port: int = state["base_port"]

    # -- lifecycle of the state dir ---------------------------------------------------------

    @staticmethod
    def exists(state_dir: Path) -> bool:
        """Whether ``state_dir`` holds a local cluster's state."""
        return (Path(state_dir) / STATE_FILE).is_file()

    @classmethod
    def create(
        cls,
        state_dir: Path,
        *,
        host: str = DEFAULT_HOST,
        base_port: int = DEFAULT_BASE_PORT,
        redis_server: str | None = None,
        extra_args: Sequence[str] = (),
        start_timeout: float = 15.0,
    ) -> LocalProvisioner:
        """Start a new, empty state dir; refuse one that already holds nodes."""
        state_dir = Path(state_dir)
        if not 1 <= base_port < 65536 - BUS_PORT_OFFSET:
            raise InputError(f"base port {base_port} is out of range 1..{65535 - BUS_PORT_OFFSET}")
        binary = redis_server or shutil.which("redis-server")
        if binary is None:
            raise ProvisioningError("redis-server not found on PATH (apt-get install redis-server)")
        if cls.exists(state_dir):
            existing = cls(state_dir, start_timeout=start_timeout)
            if existing.list_nodes():
                raise InputError(
                    f"{state_dir}: a local cluster is already up; "
                    "use `headroom local scale` or `headroom local down`"
                )
        state_dir.mkdir(parents=True, exist_ok=True)
        password = generate_password()
        _write_private(state_dir / PASSWORD_FILE, password + "\n")
        _write_private(state_dir / AUTH_CONF, redis_auth_config(password))
        state: dict[str, Any] = {
            "version": _STATE_VERSION,
            "host": host,
            "base_port": base_port,
            "redis_server": binary,
            "extra_args": list(extra_args),
            "next_ordinal": 0,
            "spec": None,
            "nodes": [],
        }
        _write_json(state_dir / STATE_FILE, state)
        return cls(state_dir, start_timeout=start_timeout)

    @classmethod
    def open(cls, state_dir: Path, *, start_timeout: float = 15.0) -> LocalProvisioner:
        """Reopen an existing state dir; :class:`InputError` if there is none."""
        if not cls.exists(state_dir):
            raise InputError(f"{state_dir}: no local cluster is up (run `headroom local up`)")
        return cls(state_dir, start_timeout=start_timeout)

    def destroy(self) -> list[int]:
        """Stop every node and delete the state dir; returns the pids that were stopped."""
        stopped: list[int] = []
        for proc in self.processes():
            if proc.pid is not None:
                stopped.append(proc.pid)
            self.remove_node(proc.info.name)
        shutil.rmtree(self.state_dir, ignore_errors=True)
        log.info("Destroyed local cluster dir=%s stopped=%d", self.state_dir, len(stopped))
        return stopped

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the state dir for one whole operation (``up``, ``scale``, ``down``).

        The kernel drops the lock if the holder dies, so a SIGKILLed ``scale``
        never blocks the next one.
        """
        with open(self.state_dir / "operation.lock", "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as err:
                raise ProvisioningError(
                    f"{self.state_dir}: another headroom command is changing this cluster"
                ) from err
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @property
    def password_file(self) -> Path:
        """The file holding the password (``REDISCLI_AUTH=$(cat FILE) redis-cli ...``)."""
        return self.state_dir / PASSWORD_FILE

    @property
    def auth(self) -> RedisAuth:
        """The password every node of this state dir requires."""
        try:
            password = self.password_file.read_text().strip()
        except OSError as err:
            raise ProvisioningError(f"{self.state_dir}: no password file: {err}") from err
        return RedisAuth(password=password)

    # -- the cluster shape last asked for ---------------------------------------------------

    @property
    def spec(self) -> LocalClusterSpec | None:
        raw = self._read().get("spec")
        return LocalClusterSpec(int(raw["masters"]), int(raw["replicas"])) if raw else None

    def set_spec(self, spec: LocalClusterSpec) -> None:
        with self._locked() as state:
            state["spec"] = {"masters": spec.masters, "replicas": spec.replicas}

    # -- NodeProvisioner ---------------------------------------------------------------------

    def add_node(self, *, port: int | None = None) -> NodeInfo:
        """Start one empty node on ``port`` (default: the lowest free port from the base)."""
        with self._locked() as state:
            taken = {int(n["port"]) for n in state["nodes"]}
            if port is None:
                port = self._pick_port(taken)
            elif port in taken or port_in_use(self.host, port):
                bus = port + BUS_PORT_OFFSET
                raise ProvisioningError(
                    f"port {port} on {self.host} is in use (or its cluster-bus port {bus})"
                )
            ordinal = int(state["next_ordinal"])
            state["next_ordinal"] = ordinal + 1
            record: dict[str, Any] = {
                "name": f"node{ordinal}",
                "port": port,
                "ordinal": ordinal,
                "pid": None,
                "node_id": None,
            }
            # Recorded before the process exists: a crash right after the start still
            # leaves a record (and a pidfile) that `down` can clean up.
            state["nodes"].append(record)
            self._save(state)
            try:
                record["pid"], record["node_id"] = self._start(state, record)
            except BaseException:
                self._stop(record)
                shutil.rmtree(self._workdir(record), ignore_errors=True)
                state["nodes"].remove(record)
                raise
            info = self._info(record)
        log.info("Started redis-server name=%s addr=%s pid=%s", info.name, info.addr, record["pid"])
        return info

    def remove_node(self, name: str) -> None:
        with self._locked() as state:
            record = next((n for n in state["nodes"] if n["name"] == name), None)
            if record is None:
                return
            pid = self._stop(record)
            shutil.rmtree(self._workdir(record), ignore_errors=True)
            state["nodes"].remove(record)
        log.info("Stopped redis-server name=%s port=%s pid=%s", name, record["port"], pid)

    def list_nodes(self) -> list[NodeInfo]:
        nodes = sorted(self._read()["nodes"], key=lambda n: int(n["ordinal"]))
        return [self._info(n) for n in nodes]

    # -- local extras ------------------------------------------------------------------------

    def processes(self) -> list[LocalNodeProcess]:
        """Every node with its live pid (``None`` if its process is gone)."""
        nodes = sorted(self._read()["nodes"], key=lambda n: int(n["ordinal"]))
        return [LocalNodeProcess(self._info(n), self._workdir(n), self._live_pid(n)) for n in nodes]

    # -- internals ---------------------------------------------------------------------------

    def _info(self, record: dict[str, Any]) -> NodeInfo:
        return NodeInfo(
            name=str(record["name"]),
            addr=NodeAddr(self.host, int(record["port"])),
            ordinal=int(record["ordinal"]),
            node_id=record.get("node_id"),
        )

    def _workdir(self, record: dict[str, Any]) -> Path:
        return self.state_dir / str(record["name"])

    def _pick_port(self, taken: set[int]) -> int:
        port = self.base_port
        while port + BUS_PORT_OFFSET < 65536:
            if port not in taken and not port_in_use(self.host, port):
                return port
            port += 1
        raise ProvisioningError(f"no free port on {self.host} from {self.base_port} upwards")

    def _start(self, state: dict[str, Any], record: dict[str, Any]) -> tuple[int, str]:
        workdir = self._workdir(record)
        shutil.rmtree(workdir, ignore_errors=True)  # never inherit an old nodes.conf
        workdir.mkdir(parents=True)
        port = int(record["port"])
        argv = [
            str(state["redis_server"]),
            str(self.state_dir / AUTH_CONF),  # requirepass/masterauth, never in argv
            "--port", str(port),
            "--bind", self.host,
            *CLUSTER_NODE_ARGS,
            "--appendonly", "no",
            "--save", "",
            "--dir", str(workdir),
            "--daemonize", "yes",
            "--pidfile", str(workdir / "redis.pid"),
            "--logfile", str(workdir / "redis.log"),
            *[str(a) for a in state.get("extra_args", [])],
        ]  # fmt: skip
        try:
            launcher = subprocess.run(
                argv, cwd=workdir, capture_output=True, timeout=self.start_timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise ProvisioningError(
                f"{self.host}:{port}: could not run redis-server: {err}"
            ) from err
        if launcher.returncode != 0:
            raise ProvisioningError(
                f"{self.host}:{port}: redis-server exited with {launcher.returncode}: "
                + _last_line(launcher.stdout.decode(errors="replace") or "no output")
            )
        deadline = time.monotonic() + self.start_timeout
        connect = make_connect(
            self.auth, client_name="headroom-provisioner", socket_timeout=2.0,
            decode_responses=True,
        )  # fmt: skip
        client = connect(self.host, port)
        try:
            while True:
                pid = _read_pid(workdir / "redis.pid")
                if pid is not None and _pid_is_node(pid, port):
                    record["pid"] = pid
                    try:
                        return pid, str(cmd(client, "CLUSTER", "MYID"))
                    except ClusterError:
                        pass
                logged = _tail(workdir / "redis.log")
                if time.monotonic() > deadline or "aborting" in logged.lower():
                    reason = _last_line(logged) or "no answer"
                    raise ProvisioningError(
                        f"{self.host}:{port}: redis-server did not start in "
                        f"{self.start_timeout:.0f}s: {reason}"
                    )
                time.sleep(0.02)
        finally:
            client.close()

    def _live_pid(self, record: dict[str, Any]) -> int | None:
        port = int(record["port"])
        candidates = [record.get("pid"), _read_pid(self._workdir(record) / "redis.pid")]
        for pid in candidates:
            if isinstance(pid, int) and _pid_is_node(pid, port):
                return pid
        return None

    def _stop(self, record: dict[str, Any]) -> int | None:
        pid = self._live_pid(record)
        if pid is None:
            return None
        port = int(record["port"])
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return pid
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not _pid_is_node(pid, port):
                    return pid
                time.sleep(0.02)
        raise ProvisioningError(f"{self.host}:{port}: redis-server pid {pid} did not stop")

    def _read(self) -> dict[str, Any]:
        path = self.state_dir / STATE_FILE
        try:
            state: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError as err:
            raise InputError(f"{self.state_dir}: no local cluster is up") from err
        except (OSError, ValueError) as err:
            raise ProvisioningError(f"{path}: unreadable state: {err}") from err
        if state.get("version") != _STATE_VERSION:
            raise ProvisioningError(f"{path}: unknown state version {state.get('version')!r}")
        return state

    def _save(self, state: dict[str, Any]) -> None:
        _write_json(self.state_dir / STATE_FILE, state)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """Read the state under a lock, let the caller change it, write it back."""
        with self._thread_lock, open(self.state_dir / "state.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                state = self._read()
                try:
                    yield state
                finally:
                    # Saved on failure too: what the caller already did (a started or
                    # stopped process) is real and must be on disk.
                    self._save(state)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (created so, never widened)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)  # readers see the old state or the new one, never half


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _tail(path: Path, size: int = 4096) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - size))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
