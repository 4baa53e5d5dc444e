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
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from headroom.controller.files import TRACE_MAX_BYTES, read_bounded
from headroom.controller.redis.connection import (
    Client,
    Connect,
    NodeAddr,
    RedisAuth,
    cmd,
    make_connect,
)
from headroom.controller.redis.topology import parse_nodes
from headroom.controller.signals.base import Metric, Reading, Unavailable, resample
from headroom.controller.signals.redis_samples import (
    ADMIN_COMMANDS,
    ClusterSample,
    CounterPoint,
    NodeRates,
    NodeSample,
    Probe,
    clock_offset,
    demand_calls,
    info_number,
    quantile99,
    queueing_delays,
)
from headroom.controller.world import World
from headroom.policies import errors
from headroom.policies.errors import PolicyError, TraceError, field_error
from headroom.policies.jsonable import finite_or_none
from headroom.policies.policy import Metrics
from headroom.policies.series import Series

log = logging.getLogger(__name__)

HISTORY_VERSION = 1


# Commands an operator or exporter sends; their latency says nothing about serving load.
def default_connect(timeout: float = 2.0, auth: RedisAuth | None = None) -> Connect:
    """A ``connect(host, port)`` with ``timeout`` seconds and the cluster's AUTH/TLS."""
    return make_connect(
        auth,
        client_name="headroom-signals",  # not an application client (see the resharder)
        socket_timeout=timeout,
        connect_timeout=timeout,
        decode_responses=True,
    )


@dataclass
class _ProbeState:
    """The latency probes of one node process (reset with its counters)."""

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
        rate_window: float = 2.0,
    ) -> None:
        """``rate_window``: wall seconds a node's QPS and CPU are averaged over (see
        :class:`NodeRates`); a few sampling intervals, so one late sample is no spike."""
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
        self._clients: dict[str, Client] = {}
        self._rates = NodeRates(rate_window)
        self._probes: dict[str, _ProbeState] = {}
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

    @property
    def rate_window(self) -> float:
        """Wall seconds each QPS reading averages over."""
        return self._rates.window

    # -- sampling -----------------------------------------------------------------------

    def _client(self, addr: str) -> Client:
        client = self._clients.get(addr)
        if client is None:
            client = self._clients[addr] = self._connect(*_host_port(addr))
        return client

    def _retrying(self) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(2),
            wait=wait_fixed(0.05),
            retry=retry_if_exception_type(errors.ClusterUnreachable),
            reraise=True,
        )

    def topology(self) -> list[tuple[str, str, str]]:
        """(node_id, addr, role) from the seed, else from any node known before."""
        candidates = [self.seed] + [addr for _, addr, _ in self._known if addr != self.seed]
        last_error = "no node answered"
        for addr in candidates:
            try:
                raw = cmd(self._client(addr), "CLUSTER", "NODES")
            except errors.CommandRefused as err:
                if "cluster support disabled" in str(err):
                    return [(addr, addr, "master")]
                last_error = f"{addr}: {err}"
                continue
            except errors.ClusterError as err:
                last_error = f"{addr}: {err}"
                continue
            text = raw if isinstance(raw, str) else raw.decode() if isinstance(raw, bytes) else ""
            nodes = _serving_nodes(text)
            if nodes:
                self._known = nodes
                return nodes
        raise errors.ClusterUnreachable(last_error)

    def _probe(self, client: Client) -> list[Probe]:
        probes = []
        for _ in range(self.probes):
            sent = time.time()
            seconds, micros = cmd(client, "TIME")
            received = time.time()
            served = int(seconds) + int(micros) / 1e6
            probes.append(Probe(time.monotonic(), sent, served, received))
        return probes

    def _sample_node(self, node_id: str, addr: str, role: str, at: float, tick: int) -> NodeSample:
        """One node's look; its rates are filled in by :meth:`sample` (a shared window)."""
        client = self._client(addr)
        for attempt in self._retrying():
            with attempt:
                fresh = self._probe(client)
                info = cmd(client, "INFO", "server", "stats", "memory", "cpu", "keyspace",
                           "latencystats", "commandstats")  # fmt: skip
        mono = time.monotonic()
        commands = demand_calls(info)
        cpu = info_number(info, "used_cpu_sys") + info_number(info, "used_cpu_user")
        run_id = str(info.get("run_id", ""))
        # Our own INFO and TIME probes are admin commands, already left out of the count.
        restarted = self._rates.observe(
            node_id, run_id, role, CounterPoint(tick, mono, commands, cpu)
        )
        if restarted:
            log.info(
                "Restarted Redis INFO counters node=%s addr=%s role=%s run_id=%s (a gap)",
                node_id[:8], addr, role, run_id[:8],
            )  # fmt: skip
        prev = self._probes.get(node_id)
        if prev is None or prev.run_id != run_id:
            prev = self._probes[node_id] = _ProbeState(run_id, deque(), deque())
        probes, offsets = prev.probes, prev.offsets
        probes.extend(fresh)
        while probes and probes[0].mono < mono - self.latency_window:
            probes.popleft()
        if fresh:
            offsets.append((mono, clock_offset(fresh)))
        while offsets and offsets[0][0] < mono - self.offset_window:
            offsets.popleft()
        offset = min((o for _, o in offsets), default=math.nan)
        p99 = quantile99(queueing_delays(probes, offset))
        rtt_p99 = quantile99([p.rtt for p in probes])
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
            qps=math.nan,
            p99_seconds=p99,
            server_p99_seconds=max(server_p99) if server_p99 else math.nan,
            memory_bytes=info_number(info, "used_memory"),
            keys=keys,
            cpu_rate=math.nan,
            rtt_p99_seconds=rtt_p99,
        )

    def sample(self) -> ClusterSample | Unavailable:
        """Look at every node once and append the result to the history. Never raises."""
        at = self._now()
        try:
            topology = self.topology()
        except errors.ClusterError as err:
            return Unavailable(self.name, f"cluster topology unreadable: {err}", at)
        nodes: list[NodeSample] = []
        missing: dict[str, str] = {}
        tick = self._rates.tick(time.monotonic())
        for node_id, addr, role in topology:
            try:
                nodes.append(self._sample_node(node_id, addr, role, at, tick))
            except errors.ClusterError as err:
                missing[addr] = str(err) or type(err).__name__
                self._clients.pop(addr, None)
                self._rates.forget(node_id)  # a missed look: its next delta spans a gap
        # Nodes that left (or failed out of) the cluster start over if they come back.
        self._rates.keep_only(node_id for node_id, _, _ in topology)
        for node_id in [n for n in self._probes if n not in {t[0] for t in topology}]:
            del self._probes[node_id]
        live = {addr for _, addr, _ in topology}
        for addr in [a for a in self._clients if a not in live and a != self.seed]:
            self._clients.pop(addr).close()
        rates: dict[str, tuple[float, float]] = {}
        for role in ("master", "replica"):
            rates |= self._rates.rates(n.node_id for n in nodes if n.role == role)
        nodes = [replace(n, qps=rates[n.node_id][0], cpu_rate=rates[n.node_id][1]) for n in nodes]
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
        value = sample.total(metric)
        if math.isnan(value):
            return Unavailable(self.name, f"{metric} needs one more sample", sample.at)
        return Reading(metric, value, sample.at, self.name)

    def range(self, metric: Metric, start: float, end: float, step: float) -> Series | Unavailable:
        samples = self.history()
        if not samples:
            return Unavailable(self.name, "no history recorded", self._now())
        raw = Series.from_lists([s.at for s in samples], [s.total(metric) for s in samples])
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
        tmp.write_text(json.dumps(finite_or_none(doc), separators=(",", ":")))
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


# -- from a policy: the redis row of signals/registry.py ------------------------------------


def redis_info(metrics: Metrics, world: World) -> RedisInfoSource:
    seed, auth = _redis_seed(metrics, world)
    return RedisInfoSource(
        seed,
        connect=default_connect(auth=auth),
        now=world.now,
        stale_after=world.stale_after,
    )


def _redis_seed(metrics: Metrics, world: World) -> tuple[str, RedisAuth | None]:
    """The Redis INFO seed and the password/TLS to read it with."""
    cluster = metrics.qps.redis_cluster
    if cluster is not None:
        if world.redis_cluster is None:
            raise PolicyError(
                field_error(
                    "policy", "metrics.qps.redisCluster", "needs the operator (a RedisCluster)"
                )
            )
        # The address is the cluster's own, never a policy's url: its password goes
        # nowhere else.
        addr, auth = world.redis_cluster(cluster)
        return str(addr), auth
    seed = metrics.qps.url or world.redis_seed
    if not seed:
        raise PolicyError(
            field_error(
                "policy", "metrics.qps.url", "is required for source redis (a seed host:port)"
            )
        )
    world.access.address(seed, "metrics.qps.url", "redis")
    return _strip_scheme(seed, "redis://"), world.redis_auth


def _strip_scheme(url: str, *schemes: str) -> str:
    for scheme in schemes:
        if url.startswith(scheme):
            return url[len(scheme) :]
    return url
