"""The alert rules on hand-built pass reports: each alert fires after its hold time, has
its numbers and identity, and clears when its condition does."""

from __future__ import annotations

from typing import Any

from headroom.controller.alerts.rules import RuleMemory, evaluate
from tests.alerts.reports import T0, live, report, spec


def _run(policy, reports):
    memory, out = RuleMemory(), []
    past: list[Any] = []
    for r in reports:
        alerts, memory = evaluate(r, policy, memory, past)
        past.append((r.at, r.forecast))
        out.append({a.name: a for a in alerts})
    return out, memory


def test_forecast_miss_fires_after_it_held_and_clears() -> None:
    policy = spec()
    passes = [report(T0 + i * 300, demand=2000.0 if 1 <= i <= 4 else 1000.0) for i in range(7)]
    seen, _ = _run(policy, passes)
    assert [("forecastMiss" in s) for s in seen] == [False, False, False, True, True, False, False]
    miss = seen[3]["forecastMiss"]
    assert miss.key == "shop/cart/forecastMiss" and miss.target == "cart"
    assert miss.since == T0 + 300 and miss.at == T0 + 900
    assert miss.numbers["demand_qps"] == 2000.0 and miss.numbers["forecast_upper_qps"] == 1500.0
    assert round(miss.numbers["over_percent"]) == 33
    assert "33% above the forecast's p90 band" in miss.summary
    # Within forecastMissMargin (10 %) of the band is noise, not a miss.
    near = [report(T0 + i * 300, demand=1600.0) for i in range(6)]
    seen, _ = _run(policy, near)
    assert not any("forecastMiss" in s for s in seen)


def test_forecast_miss_judges_by_the_forecast_capacity_was_ordered_against() -> None:
    # Capacity takes 30 min to arrive, so demand now is judged against what was forecast
    # for now 30 min ago, even if later forecasts caught up with the surprise.
    slow = spec(targets=[{"name": "cart", "capacityPerUnit": 1000, "maxUnits": 10,
                          "provisioning": {"fixedSeconds": "30m"}}])  # fmt: skip
    old = [report(T0 + i * 300, demand=1000.0, upper=1500.0) for i in range(7)]
    caught_up = [report(T0 + i * 300, demand=2000.0, upper=3000.0) for i in range(7, 12)]
    seen, _ = _run(slow, old + caught_up)
    assert "forecastMiss" in seen[-1]
    assert seen[-1]["forecastMiss"].numbers["forecast_upper_qps"] == 1500.0
    seen, _ = _run(spec(), old + caught_up)  # a 60 s delay: the newest forecast counts
    assert "forecastMiss" not in seen[-1]


def test_slo_breach_when_demand_exceeds_ready_capacity() -> None:
    passes = [report(T0 + i * 300, demand=3500.0, upper=5000.0, ready=3) for i in range(3)]
    seen, _ = _run(spec(), passes)
    assert "sloBreach" not in seen[0] and "sloBreach" in seen[1]
    breach = seen[1]["sloBreach"]
    assert breach.severity.value == "critical"
    assert breach.numbers == {"demand_qps": 3500.0, "ready_units": 3.0,
                              "ready_capacity_qps": 3000.0}  # fmt: skip


def test_slo_breach_when_p99_latency_is_above_the_slo() -> None:
    """Capacity on paper is fine (1k QPS on 3 units), but the service is slow: the p99 the
    source measures (seconds) above slo.latencyP99Ms for sloBreachFor is a breach, once
    for the policy; under the SLO or unmeasured, none."""
    policy = spec(slo={"latencyP99Ms": 2})
    slow = [report(T0 + i * 300, demand=1000.0, p99=0.0035) for i in range(3)]
    seen, _ = _run(policy, slow)
    assert "sloBreach" not in seen[0] and "sloBreach" in seen[1]
    breach = seen[1]["sloBreach"]
    assert breach.target is None and breach.key == "shop/-/sloBreach"
    assert breach.numbers == {"p99_ms": 3.5, "slo_p99_ms": 2.0}
    assert "p99 latency 3.5 ms is above the SLO's 2 ms" in breach.summary
    for p99 in (0.0015, None):
        fine = [report(T0 + i * 300, demand=1000.0, p99=p99) for i in range(3)]
        seen, _ = _run(policy, fine)
        assert not any("sloBreach" in s for s in seen)


def test_scale_failed_at_once_and_stuck_after_its_hold() -> None:
    seen, _ = _run(spec(), [report(T0, failed="RedisCluster cart: API answered 500")])
    assert "API answered 500" in seen[0]["scaleFailed"].summary
    stuck = [report(T0 + i * 600, ready=3, desired=5, busy=True) for i in range(5)]
    seen, _ = _run(spec(), stuck)
    # stuckFor (30m) beyond the expected provisioning delay (the default 60 s).
    assert [("scaleFailed" in s) for s in seen] == [False, False, False, False, True]
    assert "not converged after 31 min" in seen[4]["scaleFailed"].summary


def test_capped_names_the_event_ahead() -> None:
    event = live(T0 + 3600)
    seen, _ = _run(spec(), [report(T0, capped=True, event=event)])
    capped = seen[0]["capacityCapped"]
    assert capped.event == "Friday live" and "ahead of Friday live" in capped.summary
    assert capped.numbers["max_units"] == 10.0


def test_signals_unavailable_is_policy_wide() -> None:
    seen, _ = _run(spec(), [report(T0 + i * 300, unavailable=True) for i in range(3)])
    assert "signalsUnavailable" not in seen[0]
    alert = seen[1]["signalsUnavailable"]
    assert alert.target is None and alert.key == "shop/-/signalsUnavailable"
    assert "connection refused" in alert.summary


def test_plan_changed_shortly_before_an_event() -> None:
    event = live(T0 + 90 * 60)  # within planChangeWithin (2 h)
    planned = [4, 4, 7, 7]  # the learned uplift jumped between the second and third pass
    passes = [report(T0 + i * 600, event=event, planned=p) for i, p in enumerate(planned)]
    passes.append(report(event.start + 60, event=event, planned=7))  # the event began
    seen, memory = _run(spec(), passes)
    assert [("planChanged" in s) for s in seen] == [False, False, True, True, False]
    change = seen[2]["planChanged"]
    assert change.numbers["first_planned_units"] == 4 and change.numbers["planned_units"] == 7
    assert "moved from 4 to 7 units" in change.summary and change.event == "Friday live"
    assert memory.planned_peak == {}


def test_memory_round_trips_through_json() -> None:
    _, memory = _run(spec(), [report(T0, demand=2000.0), report(T0 + 300, demand=2000.0)])
    assert RuleMemory.from_json(memory.to_json()) == memory
    assert memory.pending["cart/forecastMiss"] == T0
