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
from dataclasses import dataclass
from pathlib import Path

import redis

from headroom.controller.assembly import Runtime, World, build_runtime
from headroom.controller.loop import Condition, ListSink, PassReport
from headroom.controller.signals.base import Unavailable
from headroom.controller.signals.redis_info import RedisInfoSource
from headroom.policies.calendar import Calendar
from headroom.policies.policy import parse_policy
from tests.controller.test_loop import ManualClock, RecordingTarget
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
class Rig:
    """A real redis-server, the runtime over it, the source clock and the recorded orders."""

    nodes: list[RedisNode]
    clock: ManualClock
    target: RecordingTarget
    runtime: Runtime | None = None

    @property
    def node(self) -> RedisNode:
        return self.nodes[-1]

    @property
    def source(self) -> RedisInfoSource:
        assert self.runtime is not None and isinstance(self.runtime.source, RedisInfoSource)
        return self.runtime.source

    def load(self, commands: int = 500) -> None:
        """Real demand: ``commands`` SETs in one pipeline."""
        client = self.node.client()
        pipe = client.pipeline(transaction=False)
        for i in range(commands):
            pipe.set(f"k{i}", i)
        pipe.execute()
        client.close()

    def sample(self) -> None:
        """Serve some load, then take one sample a (source-clock) second later."""
        self.load()
        self.clock.sleep(1.0)
        self.source.sample()

    def reconcile(self) -> PassReport:
        assert self.runtime is not None
        return self.runtime.loop.reconcile()

    def gap_pass(self, gap: Callable[[], None]) -> tuple[PassReport, PassReport]:
        """Fresh samples of a load one unit cannot serve, then ``gap()`` and a pass (which
        must order nothing), fresh samples again and a pass (which orders what the load
        needs, so the gap pass's silence was the gap's doing); the two passes' reports."""
        for _ in range(3):
            self.sample()
        gap()
        during = self.reconcile()
        calls = self.target.calls
        assert calls == [], f"ordered from the last good value in a gap: {calls}"
        for _ in range(2):
            self.sample()
        after = self.reconcile()
        assert after.demand_now is not None and after.demand_now > 10, after
        assert calls and calls[0][0] > 1, "fresh samples of this load ordered nothing"
        return during, after


@contextmanager
def _rig(tmp_path: Path) -> Iterator[Rig]:
    node = start_plain_redis(tmp_path / "plain")
    rig = Rig([node], ManualClock(START), RecordingTarget("cart", 1))
    try:
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
        rig.runtime = build_runtime(
            spec,
            World(stale_after=STALE_AFTER),
            calendar=lambda: Calendar.of([]),
            clock=rig.clock,
            sink=ListSink(),
            step=STEP,
            sample_every=3600.0,  # the thread samples once at start; the test takes the rest
            with_latency=False,
            targets=lambda _t: rig.target,
        )
        source = rig.source
        wait_until(lambda: source.latest() is not None, 30, "the sampler's first sample")
        yield rig
    finally:
        if rig.runtime is not None:
            rig.runtime.close()
        for n in rig.nodes:
            n.stop()


def _metrics(report: PassReport) -> Condition:
    return next(c for c in report.conditions if c.type == "MetricsUnavailable")


def test_a_restarted_node_is_metrics_unavailable_for_its_gap_then_clears(tmp_path: Path) -> None:
    with _rig(tmp_path) as rig:

        def restart() -> None:
            old = rig.node
            old_run_id = old.client().info("server")["run_id"]
            old.stop()
            rig.clock.sleep(1.0)
            missed = rig.source.sample()  # unreachable: no sample is recorded
            assert isinstance(missed, Unavailable), missed
            back = start_plain_redis(tmp_path / "plain", port=old.port)  # the same address
            rig.nodes.append(back)
            assert back.client().info("server")["run_id"] != old_run_id
            rig.sample()  # a new run id: its counters start over

        during, after = rig.gap_pass(restart)
    gap = _metrics(during)
    assert (gap.status, gap.reason) == ("True", "MetricsGap"), during.conditions
    assert "needs one more sample" in gap.message
    assert during.demand_now is None and during.forecast is None
    assert _metrics(after).status == "False", after.conditions


def test_stalled_sampling_is_metrics_unavailable_until_samples_return(tmp_path: Path) -> None:
    with _rig(tmp_path) as rig:

        def stall() -> None:
            time.sleep(STALE_AFTER + 1.0)  # no sample for longer than stale_after
            rig.clock.sleep(STALE_AFTER + 1.0)

        during, after = rig.gap_pass(stall)
    gap = _metrics(during)
    assert (gap.status, gap.reason) == ("True", "MetricsGap"), during.conditions
    assert "stale" in gap.message
    assert _metrics(after).status == "False", after.conditions


def test_a_counter_reset_without_a_restart_is_a_gap_too(tmp_path: Path) -> None:
    with _rig(tmp_path) as rig:

        def reset() -> None:
            client: redis.Redis = rig.node.client()
            client.config_resetstat()  # the same process; its counters went down
            client.close()
            rig.sample()

        during, after = rig.gap_pass(reset)
    gap = _metrics(during)
    assert (gap.status, gap.reason) == ("True", "MetricsGap"), during.conditions
    assert "needs one more sample" in gap.message
    assert _metrics(after).status == "False", after.conditions
