"""What the Redis INFO source samples, and the arithmetic on it (no client here).

:class:`NodeSample`/:class:`ClusterSample` are one node's and the cluster's look at one
tick (and the history file's rows); :func:`demand_calls` counts the commands that are
demand in ``INFO commandstats``; :class:`NodeRates` turns cumulative counters into
rates that survive restarts, failovers and topology changes; :class:`Probe`,
:func:`clock_offset` and :func:`queueing_delays` turn timed ``TIME`` commands into
queueing delay. :mod:`.redis_info` (the source) reads Redis and feeds them; see its
docstring for the two clocks and the latency probe.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from headroom.controller.signals.base import Metric

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
    return total if seen else info_number(info, "total_commands_processed")


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


@dataclass(frozen=True)
class CounterPoint:
    """One look at a node's cumulative counters: the sample it belongs to (``tick``) and
    the monotonic wall time of the look."""

    tick: int
    mono: float
    commands: float
    cpu: float


@dataclass
class _Epoch:
    """Counter points of one node since its counters last started over (see :class:`NodeRates`)."""

    run_id: str
    role: str
    points: deque[CounterPoint]


class NodeRates:
    """Per-node command and CPU rates that survive topology changes.

    A node is its cluster node id; its counters are trusted only within one *epoch*:
    the same ``run_id`` (process), the same role, counters that never went down, and
    no missed look. Anything else starts a new epoch, and the node's rate is NaN (a
    gap) until the epoch has two points: a restart's counter reset, a replica promoted
    to master (its counter holds the writes it replicated), a node that was unreachable
    for a sample. A gap is never a zero and never a burst: the delta across it is not used.

    Rates are taken over the trailing ``window`` wall seconds, like Prometheus'
    ``rate()``, so a client that stalls for one sample and then sends what it owed reads
    as its mean rate, not as a zero followed by a spike. The nodes summed together (the
    masters) share one window, from the same sample on: a node that joined two samples
    ago shortens everyone's window to those two samples, since a sum of rates over
    different spans counts the load that moved to the new node twice.
    """

    def __init__(self, window: float = 2.0) -> None:
        self.window = window
        self._epochs: dict[str, _Epoch] = {}
        self._ticks: deque[tuple[int, float]] = deque()  # (tick, monotonic) of each sample
        self._tick = 0

    def tick(self, mono: float) -> int:
        """Start a sample at ``mono``; its looks carry the returned tick."""
        self._tick += 1
        self._ticks.append((self._tick, mono))
        while len(self._ticks) > 2 and self._ticks[1][1] <= mono - self.window:
            self._ticks.popleft()
        return self._tick

    def observe(self, node_id: str, run_id: str, role: str, point: CounterPoint) -> bool:
        """Record one look; True when it started a new epoch of a node seen before."""
        epoch = self._epochs.get(node_id)
        last = epoch.points[-1] if epoch is not None and epoch.points else None
        if (
            epoch is None
            or last is None
            or epoch.run_id != run_id
            or epoch.role != role
            or point.tick != last.tick + 1
            or point.mono <= last.mono
            or point.commands < last.commands
            or point.cpu < last.cpu
        ):
            self._epochs[node_id] = _Epoch(run_id, role, deque([point]))
            return epoch is not None
        epoch.points.append(point)
        oldest = self._ticks[0][0] if self._ticks else point.tick
        while len(epoch.points) > 2 and epoch.points[1].tick <= oldest:
            epoch.points.popleft()
        return False

    def rates(self, node_ids: Iterable[str]) -> dict[str, tuple[float, float]]:
        """(commands/s, cpu/s) of each node over the window the group shares; NaN in a gap."""
        ids = list(node_ids)
        current = self._tick
        epochs = {n: e for n in ids if (e := self._epochs.get(n)) and e.points[-1].tick == current}
        out = dict.fromkeys(ids, (math.nan, math.nan))
        live = [e for e in epochs.values() if len(e.points) >= 2]
        if not live:
            return out
        window_tick = self._ticks[0][0] if self._ticks else current
        start = max([window_tick, *(e.points[0].tick for e in live)])
        for node_id, epoch in epochs.items():
            first = next((p for p in epoch.points if p.tick >= start), None)
            last = epoch.points[-1]
            if first is None or first.tick >= last.tick:
                continue
            elapsed = last.mono - first.mono
            out[node_id] = (
                (last.commands - first.commands) / elapsed,
                (last.cpu - first.cpu) / elapsed,
            )
        return out

    def forget(self, node_id: str) -> None:
        """The node was missed (unreachable) or left: its next look starts a new epoch."""
        self._epochs.pop(node_id, None)

    def keep_only(self, node_ids: Iterable[str]) -> None:
        keep = set(node_ids)
        for node_id in [n for n in self._epochs if n not in keep]:
            del self._epochs[node_id]


_FLOAT_FIELDS = (
    "at", "qps", "p99_seconds", "server_p99_seconds", "memory_bytes", "keys", "cpu_rate",
    "rtt_p99_seconds",
)  # fmt: skip


def quantile99(values: list[float]) -> float:
    return float(np.quantile(values, 0.99)) if values else math.nan


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def info_number(info: Mapping[str, Any], key: str) -> float:
    value = info.get(key)
    return float(value) if isinstance(value, int | float) else math.nan


def _total(sample: ClusterSample, metric: Metric) -> float:
    if sample.missing or not sample.masters:
        return math.nan
    values = [n.value(metric) for n in sample.masters]
    if any(math.isnan(v) for v in values):
        return math.nan
    return max(values) if metric is Metric.P99_LATENCY else math.fsum(values)


def unit_pairs(samples: Iterable[NodeSample]) -> tuple[list[float], list[float]]:
    """(QPS, p99 seconds) per master per tick: the capacity learner's input."""
    qps, p99 = [], []
    for n in samples:
        qps.append(n.qps)
        p99.append(n.p99_seconds)
    return qps, p99
