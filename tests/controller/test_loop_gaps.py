"""A gap in the Redis INFO samples is a gap for the control loop: MetricsUnavailable, no order.

The loop runs as every caller builds it (:func:`build_runtime` over a policy whose demand
source is Redis INFO) against a real redis-server. The runtime's sampler thread is given
an hour between samples, so after its first one the test takes each sample itself: the
gap (a restarted process's counters starting over, or sampling that stalled) then falls
on a known pass. The target is a recording fake (the loop's orders are what is checked);
the demand is real commands sent to the server.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from headroom.controller.assembly import Runtime, World, build_runtime
from headroom.controller.loop import Condition, ListSink, PassReport
from headroom.controller.signals.base import Unavailable
from headroom.controller.signals.redis_info import RedisInfoSource
from headroom.controller.targets.base import ScaleStatus
from headroom.policies.calendar import Calendar
from headroom.policies.policy import parse_policy
from tests.support.procs import wait_until
from tests.support.redis_cluster import RedisNode, start_plain_redis

# The history is on a 10 s grid and samples are one (source-clock) second apart, as in the
# demo (a 60 s grid over quarter-second samples): during a gap the history alone still
# ends in the last good bucket, so without asking the source the loop acts on it.
STEP = 10.0
# The good samples fall in the bucket that ends at 1_700_006_400, the gap just after it.
START = 1_700_006_400.0 - 3.5
STALE_AFTER = 3.0  # wall seconds without a sample before the source calls itself stale


@dataclass
class ManualClock:
    t: float

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class RecordingTarget:
    name: str
    units: int
    calls: list[tuple[int, str]] = field(default_factory=list)

    def status(self) -> ScaleStatus:
        return ScaleStatus(desired=self.units, ready=self.units)

    def scale(self, units: int, reason: str) -> None:
        self.calls.append((units, reason))
        self.units = units


@contextmanager
def _runtime(node: RedisNode, target: RecordingTarget, clock: ManualClock) -> Iterator[Runtime]:
    spec = parse_policy(
        {
            "name": "shop",
            "targets": [
                {
                    "name": "cart",
                    "kind": "RedisCluster",
                    "capacityPerUnit": 10,  # any real load here needs more than one unit
                    "minUnits": 1,
                    "maxUnits": 20,
                }
            ],
            "metrics": {"qps": {"source": "redis", "url": node.addr}},
            "forecast": {"history": "1h", "horizon": "1h"},
        }
    )
    world = World(stale_after=STALE_AFTER)
    runtime = build_runtime(
        spec,
        world,
        calendar=lambda: Calendar.of([]),
        clock=clock,
        sink=ListSink(),
        step=STEP,
        sample_every=3600.0,  # the thread samples once at start; the test takes the rest
        with_latency=False,
        targets=lambda _t: target,
    )
    try:
        source = runtime.source
        assert isinstance(source, RedisInfoSource)
        wait_until(lambda: source.latest() is not None, 30, "the sampler's first sample")
        yield runtime
    finally:
        runtime.close()


def _load(node: RedisNode, commands: int = 500) -> None:
    """Real demand: ``commands`` SETs in one pipeline."""
    client = node.client()
    pipe = client.pipeline(transaction=False)
    for i in range(commands):
        pipe.set(f"k{i}", i)
    pipe.execute()
    client.close()


def _sample(runtime: Runtime, clock: ManualClock, node: RedisNode) -> None:
    """Serve some load, then take one sample a (source-clock) second later."""
    _load(node)
    clock.sleep(1.0)
    source = runtime.source
    assert isinstance(source, RedisInfoSource)
    source.sample()


def _metrics(report: PassReport) -> Condition:
    return next(c for c in report.conditions if c.type == "MetricsUnavailable")


def _fresh_then_gap_then_fresh(
    runtime: Runtime,
    clock: ManualClock,
    node: RedisNode,
    target: RecordingTarget,
    gap: Callable[[], None],
) -> tuple[PassReport, PassReport]:
    """Fresh samples of a load one unit cannot serve, then ``gap()`` and a pass (which must
    order nothing), fresh samples again and a pass (which orders what the load needs, so
    the gap pass's silence was the gap's doing); returns the two passes' reports."""
    for _ in range(3):
        _sample(runtime, clock, node)
    gap()
    during = runtime.loop.reconcile()
    assert target.calls == [], f"ordered from the last good value in a gap: {target.calls}"
    for _ in range(2):
        _sample(runtime, clock, node)
    after = runtime.loop.reconcile()
    assert after.demand_now is not None and after.demand_now > 10, after
    assert target.calls and target.calls[0][0] > 1, "fresh samples of this load ordered nothing"
    return during, after


def test_a_restarted_node_is_metrics_unavailable_for_its_gap_then_clears(tmp_path: Path) -> None:
    node = start_plain_redis(tmp_path / "plain")
    nodes = [node]
    clock = ManualClock(START)
    target = RecordingTarget("cart", 1)
    try:
        with _runtime(node, target, clock) as runtime:

            def restart() -> None:
                old_run_id = node.client().info("server")["run_id"]
                node.stop()
                clock.sleep(1.0)
                source = runtime.source
                assert isinstance(source, RedisInfoSource)
                missed = source.sample()  # unreachable: no sample is recorded
                assert isinstance(missed, Unavailable), missed
                back = start_plain_redis(tmp_path / "plain", port=node.port)
                nodes.append(back)
                assert back.client().info("server")["run_id"] != old_run_id
                _sample(runtime, clock, back)  # a new run id: its counters start over

            # the node is back at the same address, so the later samples read it there
            during, after = _fresh_then_gap_then_fresh(runtime, clock, node, target, restart)
    finally:
        for n in nodes:
            n.stop()
    gap = _metrics(during)
    assert (gap.status, gap.reason) == ("True", "MetricsGap"), during.conditions
    assert "needs one more sample" in gap.message
    assert during.demand_now is None and during.forecast is None
    assert _metrics(after).status == "False", after.conditions


def test_stalled_sampling_is_metrics_unavailable_until_samples_return(tmp_path: Path) -> None:
    node = start_plain_redis(tmp_path / "plain")
    clock = ManualClock(START)
    target = RecordingTarget("cart", 1)
    try:
        with _runtime(node, target, clock) as runtime:

            def stall() -> None:
                time.sleep(STALE_AFTER + 1.0)  # no sample for longer than stale_after
                clock.sleep(STALE_AFTER + 1.0)

            during, after = _fresh_then_gap_then_fresh(runtime, clock, node, target, stall)
    finally:
        node.stop()
    gap = _metrics(during)
    assert (gap.status, gap.reason) == ("True", "MetricsGap"), during.conditions
    assert "stale" in gap.message
    assert _metrics(after).status == "False", after.conditions


def test_a_counter_reset_without_a_restart_is_a_gap_too(tmp_path: Path) -> None:
    node = start_plain_redis(tmp_path / "plain")
    clock = ManualClock(START)
    target = RecordingTarget("cart", 1)
    try:
        with _runtime(node, target, clock) as runtime:

            def reset() -> None:
                client: redis.Redis = node.client()
                client.config_resetstat()  # the same process; its counters went down
                client.close()
                _sample(runtime, clock, node)

            during, after = _fresh_then_gap_then_fresh(runtime, clock, node, target, reset)
    finally:
        node.stop()
    assert (_metrics(during).status, _metrics(during).reason) == ("True", "MetricsGap")
    assert _metrics(after).status == "False", after.conditions
