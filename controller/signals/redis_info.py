"""Redis itself as a signal source: INFO from every node of a cluster, no Prometheus needed.

The embedded default (``headroom demo``) and ``headroom capacity learn --redis`` use
it. Each :meth:`RedisInfoSource.sample` reads the topology from ``CLUSTER NODES`` on
the seed (so it follows scale-out and scale-in; a standalone server counts as one
master), then asks each node for ``INFO`` and times a few ``TIME`` probes. Cluster
totals sum the *masters* only: replicas replay the masters' writes and would count
them twice. Per-master samples are kept too, because capacity is per unit.

Time, on purpose, is read from two clocks:

* rates (QPS from ``INFO commandstats`` call deltas, CPU from ``used_cpu_*``)
  divide by elapsed **monotonic wall** seconds, because Redis counts real commands
  in real time even when the demo runs a scaled clock;
* history is **stamped** with ``now()`` (pass ``clock.now`` of a
  :class:`~headroom.controller.clock.ScaledClock`), because the forecaster lives
  on that timeline.

Latency: ``p99_seconds`` (what :attr:`Metric.P99_LATENCY` reads) is the 99th
percentile, over the last ``latency_window`` wall seconds, of the *queueing delay*
of this source's own probes: each probe is a ``TIME`` command, and its delay is the
server's clock when it ran minus this process's clock when it was sent. A probe
waits behind every queued client on Redis' single event loop (and behind the
server being descheduled), so it sees the wait clients see, which server-side
command time (``INFO commandstats`` / ``latencystats``, a few microseconds) never
shows. Timing the one-way trip rather than the round trip leaves out this
process's own wake-up and parsing delay after the reply, which on a busy host is
larger than the queueing it is trying to measure. The two clocks are lined up on
the least-delayed probe of the last ``offset_window`` seconds (see
:func:`clock_offset`), so a server on another host with a skewed clock reads the
same. The round-trip p99 is kept as ``rtt_p99_seconds`` for evidence.
``INFO latencystats`` (Redis >= 7) is recorded as ``server_p99_seconds`` but is
accumulated since server start, not windowed.

The history is a bounded ring buffer; :meth:`RedisInfoSource.save` /
:meth:`RedisInfoSource.restore` keep it in a JSON file so a restart does not forget.
No method raises for an unreachable node: the sample records which nodes were
missing and :meth:`instant` answers :class:`Unavailable`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import redis
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from headroom.controller.files import TRACE_MAX_BYTES, read_bounded
from headroom.controller.redis.connection import Connect, NodeAddr, RedisAuth, make_connect
from headroom.controller.redis.topology import parse_nodes
from headroom.controller.signals.base import Metric, Reading, Unavailable, resample
from headroom.policies.errors import TraceError
from headroom.policies.series import Series

log = logging.getLogger(__name__)

HISTORY_VERSION = 1
# Commands an operator or exporter sends; their latency says nothing about serving load.
ADMIN_COMMANDS = frozenset(
    {"info", "ping", "config", "cluster", "client", "slowlog", "latency", "command", "hello",
     "auth", "select", "memory", "debug", "monitor", "readonly", "readwrite", "echo", "time"}
)  # fmt: skip


# Not client demand either: commands that move or replicate data between nodes (a
# reshard sends one RESTORE-ASKING per migrated key), and wrappers whose inner commands
# Redis counts on their own (a script's redis.call(), a transaction's queued commands),
# so an application's EVAL is counted once through its GETs and SETs, and Headroom's
# own migration script not at all.
NOT_DEMAND = ADMIN_COMMANDS | frozenset(
    {"migrate", "restore-asking", "restore", "asking", "dump", "sync", "psync", "replconf",
     "flushall", "flushdb", "wait", "failover", "dbsize",
     "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro", "script", "function",
     "multi", "exec", "discard", "watch", "unwatch"}
)  # fmt: skip


def demand_calls(info: Mapping[str, Any]) -> float:
    """Client commands served so far: ``INFO commandstats`` calls minus admin and migration.

    Falls back to ``total_commands_processed`` when the section is missing.
    """
    total = 0.0
    seen = False
    for key, stats in info.items():
        if not key.startswith("cmdstat_") or not isinstance(stats, dict):
            continue
        seen = True
        if key.removeprefix("cmdstat_").split("|")[0] not in NOT_DEMAND:
            total += float(stats.get("calls", 0))
    return total if seen else _f(info, "total_commands_processed")


def default_connect(timeout: float = 2.0, auth: RedisAuth | None = None) -> Connect:
    """A ``connect(host, port)`` with ``timeout`` seconds and the cluster's AUTH/TLS."""
    return make_connect(
        auth,
        client_name="headroom-signals",  # not an application client (see the resharder)
        socket_timeout=timeout,
        connect_timeout=timeout,
        decode_responses=True,
    )


@dataclass(frozen=True)
class NodeSample:
    """One node at one tick. Rates are NaN until the node has been seen twice."""

    node_id: str
    addr: str
    role: str  # "master" or "replica"
    at: float
    qps: float
    p99_seconds: float
    server_p99_seconds: float
    memory_bytes: float
    keys: float
    cpu_rate: float
    rtt_p99_seconds: float = math.nan

    def value(self, metric: Metric) -> float:
        return {
            Metric.QPS: self.qps,
            Metric.P99_LATENCY: self.p99_seconds,
            Metric.MEMORY: self.memory_bytes,
            Metric.KEYS: self.keys,
            Metric.CPU: self.cpu_rate,
        }[metric]


@dataclass(frozen=True)
class ClusterSample:
    """One tick over the whole cluster; ``missing`` maps unreachable node addresses to why."""

    at: float
    nodes: tuple[NodeSample, ...]
    missing: Mapping[str, str] = field(default_factory=dict)

    @property
    def masters(self) -> tuple[NodeSample, ...]:
        return tuple(n for n in self.nodes if n.role == "master")

    def total(self, metric: Metric) -> float:
        """Sum over masters (worst master for latency); NaN if any master is missing or new."""
        return _total(self, metric)

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "nodes": [asdict(n) for n in self.nodes],
            "missing": dict(self.missing),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ClusterSample:
        nodes = tuple(
            NodeSample(
                node_id=str(n["node_id"]),
                addr=str(n["addr"]),
                role=str(n["role"]),
                **{k: _float(n.get(k)) for k in _FLOAT_FIELDS},
            )
            for n in raw["nodes"]
        )
        return cls(float(raw["at"]), nodes, dict(raw.get("missing", {})))


@dataclass(frozen=True)
class Probe:
    """One timed ``TIME`` command: wall seconds at send and receive here, and on the server."""

    mono: float
    sent: float
    served: float
    received: float

    @property
    def rtt(self) -> float:
        return self.received - self.sent


def clock_offset(probes: Iterable[Probe]) -> float:
    """The server's clock minus ours, read off the least-delayed probe (NaN without probes).

    A probe that found the server idle ran one loopback (or network) trip after it
    was sent, so the smallest ``served - sent`` overstates the offset by that trip
    only (tens of microseconds). Unlike NTP's symmetric-round-trip guess it does not
    depend on how fast *this* process gets back to the reply. It needs one idle
    moment per window, so the source keeps it over ``offset_window`` (minutes), not
    over the latency window: a server saturated for a whole latency window still has
    its queueing measured against an offset from calmer times.
    """
    return min((p.served - p.sent for p in probes), default=math.nan)


def queueing_delays(probes: Iterable[Probe], offset: float) -> list[float]:
    """Each probe's send-to-execution delay on the server's clock; never negative."""
    return [max(0.0, p.served - p.sent - offset) for p in probes]


@dataclass
class _NodeState:
    """What a rate needs from the previous look at a node (wall time, counters)."""

    mono: float
    commands: float
    cpu: float
    run_id: str
    probes: deque[Probe]
    offsets: deque[tuple[float, float]]  # (monotonic, clock_offset of that sample's probes)


def _host_port(addr: str) -> tuple[str, int]:
    at = NodeAddr.parse(addr)
    return at.host, at.port


def _serving_nodes(text: str) -> list[tuple[str, str, str]]:
    """(node_id, host:port, role) of every connected, non-failed node in CLUSTER NODES output."""
    nodes = []
    for line in parse_nodes(text):
        flags = line.flags
        down = any(f in flags for f in ("fail", "handshake", "noaddr")) or line.link != "connected"
        if down and "myself" not in flags:
            continue
        role = "master" if "master" in flags else "replica"
        nodes.append((line.id, str(NodeAddr(line.host, line.port)), role))
    return nodes


_FLOAT_FIELDS = (
    "at", "qps", "p99_seconds", "server_p99_seconds", "memory_bytes", "keys", "cpu_rate",
    "rtt_p99_seconds",
)  # fmt: skip


def _p99(values: list[float]) -> float:
    return float(np.quantile(values, 0.99)) if values else math.nan


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _f(info: Mapping[str, Any], key: str) -> float:
    value = info.get(key)
    return float(value) if isinstance(value, int | float) else math.nan


class RedisInfoSource:
    """Samples a Redis Cluster (or one server) through INFO; see the module docstring."""

    def __init__(
        self,
        seed: str,
        connect: Connect | None = None,
        now: Callable[[], float] = time.time,
        history_size: int = 20_000,
        history_file: Path | str | None = None,
        probes: int = 10,
        latency_window: float = 5.0,
        offset_window: float = 600.0,
        stale_after: float = 30.0,
        name: str = "redis-info",
    ) -> None:
        self.seed = seed
        self._connect = connect or default_connect()
        self._now = now
        self._history: deque[ClusterSample] = deque(maxlen=history_size)
        self.history_file = Path(history_file) if history_file else None
        self.probes = probes
        self.latency_window = latency_window
        self.offset_window = offset_window
        self.stale_after = stale_after
        self._name = name
        self._clients: dict[str, redis.Redis] = {}
        self._state: dict[str, _NodeState] = {}
        self._known: list[tuple[str, str, str]] = []
        self._last_mono = -math.inf
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.history_file and self.history_file.exists():
            self.restore(self.history_file)

    @property
    def name(self) -> str:
        return self._name

    # -- sampling -----------------------------------------------------------------------

    def _client(self, addr: str) -> redis.Redis:
        client = self._clients.get(addr)
        if client is None:
            client = self._clients[addr] = self._connect(*_host_port(addr))
        return client

    def _retrying(self) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(2),
            wait=wait_fixed(0.05),
            retry=retry_if_exception_type((redis.ConnectionError, redis.TimeoutError)),
            reraise=True,
        )

    def topology(self) -> list[tuple[str, str, str]]:
        """(node_id, addr, role) from the seed, else from any node known before."""
        candidates = [self.seed] + [addr for _, addr, _ in self._known if addr != self.seed]
        last_error = "no node answered"
        for addr in candidates:
            try:
                raw = self._client(addr).execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]
            except redis.ResponseError as err:
                if "cluster support disabled" in str(err):
                    return [(addr, addr, "master")]
                last_error = f"{addr}: {err}"
                continue
            except redis.RedisError as err:
                last_error = f"{addr}: {err}"
                continue
            text = raw if isinstance(raw, str) else raw.decode() if isinstance(raw, bytes) else ""
            nodes = _serving_nodes(text)
            if nodes:
                self._known = nodes
                return nodes
        raise redis.ConnectionError(last_error)

    def _probe(self, client: redis.Redis) -> list[Probe]:
        probes = []
        for _ in range(self.probes):
            sent = time.time()
            seconds, micros = client.execute_command("TIME")  # type: ignore[no-untyped-call]
            received = time.time()
            served = int(seconds) + int(micros) / 1e6
            probes.append(Probe(time.monotonic(), sent, served, received))
        return probes

    def _sample_node(self, node_id: str, addr: str, role: str, at: float) -> NodeSample:
        client = self._client(addr)
        for attempt in self._retrying():
            with attempt:
                fresh = self._probe(client)
                info = client.info(
                    "server", "stats", "memory", "cpu", "keyspace", "latencystats", "commandstats"
                )
        mono = time.monotonic()
        commands = demand_calls(info)
        cpu = _f(info, "used_cpu_sys") + _f(info, "used_cpu_user")
        run_id = str(info.get("run_id", ""))
        prev = self._state.get(addr)
        qps = cpu_rate = math.nan
        probes: deque[Probe] = deque()
        offsets: deque[tuple[float, float]] = deque()
        if prev is not None and prev.run_id == run_id and mono > prev.mono:
            elapsed = mono - prev.mono
            # Our own INFO and TIME probes are admin commands, already left out of the count.
            if commands >= prev.commands:
                qps = (commands - prev.commands) / elapsed
            cpu_rate = max(0.0, cpu - prev.cpu) / elapsed
            probes, offsets = prev.probes, prev.offsets
        probes.extend(fresh)
        while probes and probes[0].mono < mono - self.latency_window:
            probes.popleft()
        if fresh:
            offsets.append((mono, clock_offset(fresh)))
        while offsets and offsets[0][0] < mono - self.offset_window:
            offsets.popleft()
        self._state[addr] = _NodeState(mono, commands, cpu, run_id, probes, offsets)
        offset = min((o for _, o in offsets), default=math.nan)
        p99 = _p99(queueing_delays(probes, offset))
        rtt_p99 = _p99([p.rtt for p in probes])
        server_p99 = [
            float(v["p99"]) / 1e6
            for k, v in info.items()
            if k.startswith("latency_percentiles_usec_")
            and isinstance(v, dict)
            and "p99" in v
            and k.removeprefix("latency_percentiles_usec_").split("|")[0] not in ADMIN_COMMANDS
        ]
        keys = math.fsum(
            float(v.get("keys", 0))
            for k, v in info.items()
            if k.startswith("db") and k[2:].isdigit() and isinstance(v, dict)
        )
        return NodeSample(
            node_id=node_id,
            addr=addr,
            role=role,
            at=at,
            qps=qps,
            p99_seconds=p99,
            server_p99_seconds=max(server_p99) if server_p99 else math.nan,
            memory_bytes=_f(info, "used_memory"),
            keys=keys,
            cpu_rate=cpu_rate,
            rtt_p99_seconds=rtt_p99,
        )

    def sample(self) -> ClusterSample | Unavailable:
        """Look at every node once and append the result to the history. Never raises."""
        at = self._now()
        try:
            topology = self.topology()
        except redis.RedisError as err:
            return Unavailable(self.name, f"cluster topology unreadable: {err}", at)
        nodes: list[NodeSample] = []
        missing: dict[str, str] = {}
        for node_id, addr, role in topology:
            try:
                nodes.append(self._sample_node(node_id, addr, role, at))
            except redis.RedisError as err:
                missing[addr] = str(err) or type(err).__name__
                self._clients.pop(addr, None)
                self._state.pop(addr, None)
        live = {addr for _, addr, _ in topology}
        for addr in list(self._state):
            if addr not in live:  # a node that left the cluster
                del self._state[addr]
                self._clients.pop(addr, None)
        sample = ClusterSample(at, tuple(nodes), missing)
        with self._lock:
            if self._history and at <= self._history[-1].at:
                # A clock that did not move (or a restored history from the future):
                # keep the series strictly increasing.
                self._history.pop()
            self._history.append(sample)
            self._last_mono = time.monotonic()
        if missing:
            log.warning(
                "Sampled Redis INFO with missing nodes seed=%s missing=%s", self.seed, missing
            )
        return sample

    def start(self, interval: float = 1.0) -> None:
        """Sample every ``interval`` wall seconds in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            next_at = time.monotonic()
            while not self._stop.is_set():
                try:
                    self.sample()
                except Exception:  # noqa: BLE001 - a sampler thread must outlive any surprise
                    log.exception("Failed Redis INFO sample seed=%s", self.seed)
                next_at += interval
                self._stop.wait(max(0.0, next_at - time.monotonic()))

        self._thread = threading.Thread(target=loop, name=f"headroom-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the sampler thread, persist the history (if a file was given), close clients."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self.history_file:
            self.save(self.history_file)
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    # -- reading ------------------------------------------------------------------------

    def history(self, start: float = -math.inf, end: float = math.inf) -> list[ClusterSample]:
        """Recorded samples with ``start <= at < end``, oldest first."""
        with self._lock:
            return [s for s in self._history if start <= s.at < end]

    def node_samples(
        self, start: float = -math.inf, end: float = math.inf, role: str = "master"
    ) -> list[NodeSample]:
        """Per-node samples (masters by default) with both QPS and latency measured."""
        return [
            n
            for s in self.history(start, end)
            for n in s.nodes
            if n.role == role and not math.isnan(n.qps) and not math.isnan(n.p99_seconds)
        ]

    def latest(self) -> ClusterSample | None:
        with self._lock:
            return self._history[-1] if self._history else None

    def instant(self, metric: Metric) -> Reading | Unavailable:
        with self._lock:
            sample = self._history[-1] if self._history else None
            age = time.monotonic() - self._last_mono
        if sample is None:
            return Unavailable(self.name, "no sample yet", self._now())
        if age > self.stale_after:
            return Unavailable(self.name, f"last sample is {age:.0f}s old (stale)", self._now())
        if sample.missing:
            addr, why = next(iter(sample.missing.items()))
            return Unavailable(
                self.name, f"{len(sample.missing)} node(s) unreachable, {addr}: {why}", sample.at
            )
        value = _total(sample, metric)
        if math.isnan(value):
            return Unavailable(self.name, f"{metric} needs one more sample", sample.at)
        return Reading(metric, value, sample.at, self.name)

    def range(self, metric: Metric, start: float, end: float, step: float) -> Series | Unavailable:
        samples = self.history()
        if not samples:
            return Unavailable(self.name, "no history recorded", self._now())
        raw = Series.from_lists([s.at for s in samples], [_total(s, metric) for s in samples])
        return resample(raw, start, end, step)

    # -- persistence --------------------------------------------------------------------

    def save(self, path: Path | str) -> Path:
        """Write the history as JSON, atomically (a crash never leaves half a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "version": HISTORY_VERSION,
            "seed": self.seed,
            "samples": [s.to_json() for s in self.history()],
        }
        tmp = path.with_name(path.name + ".tmp")
        # json writes NaN as a bare token other tools refuse; store gaps as null.
        tmp.write_text(json.dumps(_nan_to_none(doc), separators=(",", ":")))
        os.replace(tmp, path)
        return path

    def restore(self, path: Path | str) -> int:
        """Prepend the samples saved in ``path`` (older than any current one); returns the count."""
        samples = load_history(path)
        with self._lock:
            first = self._history[0].at if self._history else math.inf
            older = [s for s in samples if s.at < first]
            current = list(self._history)
            self._history.clear()
            self._history.extend(older + current)
        log.info("Restored Redis INFO history path=%s samples=%d", path, len(older))
        return len(older)


def load_history(path: Path | str) -> list[ClusterSample]:
    """The samples saved by :meth:`RedisInfoSource.save` (oldest first)."""
    doc = json.loads(read_bounded(path, TRACE_MAX_BYTES, TraceError, "Redis INFO history"))
    if doc.get("version") != HISTORY_VERSION:
        raise ValueError(f"{path}: unknown history version {doc.get('version')!r}")
    return [ClusterSample.from_json(raw) for raw in doc["samples"]]


def _total(sample: ClusterSample, metric: Metric) -> float:
    if sample.missing or not sample.masters:
        return math.nan
    values = [n.value(metric) for n in sample.masters]
    if any(math.isnan(v) for v in values):
        return math.nan
    return max(values) if metric is Metric.P99_LATENCY else math.fsum(values)


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    return obj


def unit_pairs(samples: Iterable[NodeSample]) -> tuple[list[float], list[float]]:
    """(QPS, p99 seconds) per master per tick: the capacity learner's input."""
    qps, p99 = [], []
    for n in samples:
        qps.append(n.qps)
        p99.append(n.p99_seconds)
    return qps, p99
