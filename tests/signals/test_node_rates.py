"""The INFO rate computation through node joins, leaves, restarts, role changes and stalls.

Each case feeds :class:`NodeRates` the counters a real cluster shows in that situation
(cumulative ``commandstats`` calls per node, sampled every 0.25 wall seconds as the demo
does) and checks the cluster total: right, or a gap (NaN), never a zero or a burst.
"""

from __future__ import annotations

import math

from headroom.controller.signals.redis_samples import CounterPoint, NodeRates

STEP = 0.25


class FakeCounters:
    """Cumulative counters of nodes serving a known rate (what INFO would report)."""

    def __init__(self) -> None:
        self.calls: dict[str, float] = {}

    def serve(self, rates: dict[str, float], seconds: float) -> None:
        for node, qps in rates.items():
            self.calls[node] = self.calls.get(node, 0.0) + qps * seconds


def total(rates: NodeRates, t: float, looks: dict[str, tuple[str, str, float]]) -> float:
    """One sample as :meth:`RedisInfoSource.sample` takes it: the masters' summed rate over
    their shared window, NaN if any master is in a gap (as ``_total`` does)."""
    tick = rates.tick(t)
    for node, (run_id, role, calls) in looks.items():
        rates.observe(node, run_id, role, CounterPoint(tick, t, calls, t / 10))
    values = [
        qps for qps, _ in rates.rates(n for n, v in looks.items() if v[1] == "master").values()
    ]
    return math.nan if any(math.isnan(v) for v in values) else math.fsum(values)


def run(
    plan: list[tuple[dict[str, float], dict[str, tuple[str, str]]]],
    rates: NodeRates,
    counters: FakeCounters,
    t0: float = 0.0,
) -> list[float]:
    """Each step: serve ``rates`` for STEP seconds, then look at the listed nodes."""
    out = []
    t = t0
    for serving, looks in plan:
        t += STEP
        counters.serve(serving, STEP)
        out.append(
            total(
                rates,
                t,
                {
                    n: (run_id, role, counters.calls.get(n, 0.0))
                    for n, (run_id, role) in looks.items()
                },
            )
        )
    return out


MASTERS = {"a": ("ra", "master"), "b": ("rb", "master"), "c": ("rc", "master")}
EVEN = {"a": 300.0, "b": 300.0, "c": 300.0}


def finite(values: list[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def test_steady_cluster_reads_what_it_serves_after_one_gap() -> None:
    rates, counters = NodeRates(window=2.0), FakeCounters()
    out = run([(EVEN, MASTERS)] * 20, rates, counters)
    assert math.isnan(out[0])  # the first look has nothing to compare with: a gap, not 0
    assert all(abs(v - 900.0) < 1e-6 for v in out[1:])


def test_a_stalled_client_that_catches_up_is_neither_zero_nor_a_burst() -> None:
    """The demo's 0.0-then-5.5k: the load generator stalled for a sample, then sent what it
    owed in one pipeline. Over the trailing window the rate stays near the mean."""
    rates, counters = NodeRates(window=2.0), FakeCounters()
    run([(EVEN, MASTERS)] * 12, rates, counters)
    stalled = run([({}, MASTERS)] * 2, rates, counters, t0=12 * STEP)
    burst = run([({n: 3 * v for n, v in EVEN.items()}, MASTERS)], rates, counters, t0=14 * STEP)
    after = run([(EVEN, MASTERS)] * 10, rates, counters, t0=15 * STEP)
    # Over a 2 s window a 0.5 s stall moves the reading by at most 0.5/2 of the mean, while
    # it lasts and while its catch-up is in the window without it.
    for v in stalled + burst + after:
        assert 900 * 0.75 - 1e-6 <= v <= 900 * 1.25 + 1e-6, v
    assert after[-1] == 900.0
    # Per 0.25 s sample, as the source used to compute it, the same counters read 0 and 2.7k.
    naive = NodeRates(window=0.0)
    counters = FakeCounters()
    seq = run([(EVEN, MASTERS)] * 4 + [({}, MASTERS)] * 2, naive, counters)
    seq += run([({n: 3 * v for n, v in EVEN.items()}, MASTERS)], naive, counters, t0=6 * STEP)
    assert seq[-3] == 0.0 and seq[-1] == 2700.0


def test_a_restarted_node_is_a_gap_then_right_never_negative_or_a_burst() -> None:
    rates, counters = NodeRates(window=2.0), FakeCounters()
    run([(EVEN, MASTERS)] * 10, rates, counters)
    counters.calls["b"] = 0.0  # the process restarted: a new run id, counters from zero
    restarted = {**MASTERS, "b": ("rb2", "master")}
    out = run([(EVEN, restarted)] * 10, rates, counters, t0=10 * STEP)
    assert math.isnan(out[0])
    assert all(abs(v - 900.0) < 1e-6 for v in out[1:])


def test_counters_reset_without_a_restart_and_a_missed_look_are_gaps() -> None:
    rates, counters = NodeRates(window=2.0), FakeCounters()
    run([(EVEN, MASTERS)] * 10, rates, counters)
    counters.calls["a"] = 5.0  # CONFIG RESETSTAT: the same run id, the counter went down
    out = run([(EVEN, MASTERS)] * 2, rates, counters, t0=10 * STEP)
    assert math.isnan(out[0]) and abs(out[1] - 900.0) < 1e-6
    # c unreachable for two samples (missing from the looks), then back: its delta over the
    # absence is not used; the cluster total is a gap while c is missed, and right after.
    without_c = {k: v for k, v in MASTERS.items() if k != "c"}
    rates.forget("c")
    run([(EVEN, without_c)] * 2, rates, counters, t0=12 * STEP)
    out = run([(EVEN, MASTERS)] * 3, rates, counters, t0=14 * STEP)
    assert math.isnan(out[0]) and all(abs(v - 900.0) < 1e-6 for v in out[1:])


def test_a_promoted_replica_does_not_bring_its_replicated_writes_as_demand() -> None:
    """A replica's counter holds the writes it replayed; promoted (a failover), its delta
    across the promotion is a gap, then only what it serves as a master counts."""
    rates, counters = NodeRates(window=2.0), FakeCounters()
    nodes = {**MASTERS, "a2": ("ra2", "replica")}
    serving = {**EVEN, "a2": 120.0}  # a's writes, replayed on its replica
    run([(serving, nodes)] * 10, rates, counters)
    failed_over = {"a2": ("ra2", "master"), "b": MASTERS["b"], "c": MASTERS["c"]}
    moved = {"a2": 300.0, "b": 300.0, "c": 300.0}
    out = run([(moved, failed_over)] * 10, rates, counters, t0=10 * STEP)
    assert math.isnan(out[0])
    assert all(abs(v - 900.0) < 1e-6 for v in out[1:])


def test_join_and_leave_while_slots_move_stay_within_the_served_total() -> None:
    """3 -> 4 masters: d joins empty, takes a quarter of the load; then b leaves (scale-in
    after its slots moved to a, c and d). No sample reads above what is served."""
    rates, counters = NodeRates(window=2.0), FakeCounters()
    run([(EVEN, MASTERS)] * 10, rates, counters)
    four = {**MASTERS, "d": ("rd", "master")}
    out = run([(EVEN | {"d": 0.0}, four)], rates, counters, t0=10 * STEP)
    assert math.isnan(out[0])  # d's first look
    quarter = {"a": 225.0, "b": 225.0, "c": 225.0, "d": 225.0}
    out = run([(quarter, four)] * 12, rates, counters, t0=11 * STEP)
    assert all(900 * 0.9 <= v <= 900 * 1.0 + 1e-6 for v in out), out
    # b's slots move away; b is then gone from the cluster (and from the looks).
    three = {"a": 300.0, "c": 300.0, "d": 300.0}
    rates.keep_only(["a", "c", "d"])
    left = {k: v for k, v in four.items() if k != "b"}
    out = run([(three, left)] * 12, rates, counters, t0=23 * STEP)
    assert all(900 * 0.75 <= v <= 900 * 1.0 + 1e-6 for v in out), out
    assert abs(out[-1] - 900.0) < 1e-6
    # b comes back (a new pod reusing the id is impossible; the same id after a rejoin is
    # a new epoch): its first look is a gap, never its whole absence's delta.
    counters.serve({"b": 50.0}, 10.0)
    back = {**left, "b": ("rb", "master")}
    out = run([({**three, "b": 0.0}, back)] * 2, rates, counters, t0=35 * STEP)
    assert math.isnan(out[0]) and abs(out[1] - 900.0) < 1e-6
