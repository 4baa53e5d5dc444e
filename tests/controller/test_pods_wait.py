"""PodsWait (controller/operator/rediscluster_pods.py) on its own: the deadline, the one
Warning per stuck episode, the clock kept in status across a restart, and the recovery.
The end-to-end run through the emulator is tests/operator/test_pods_stuck.py."""

from __future__ import annotations

from typing import Any

import pytest

from headroom.controller.metrics import OperatorMetrics
from headroom.controller.operator.rediscluster_pods import PodsWait, check_deadline, rfc3339
from headroom.controller.provisioning.statefulset import PodWait

BODY = {"metadata": {"namespace": "shop", "name": "cart", "uid": "u1"}}
T0 = 1_800_000_000.0
STUCK = PodWait("cart-3", "Pending", "Unschedulable", "0/3 nodes are available", adding=True)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def __call__(self, body: Any, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))


def _pass(
    wait: PodsWait, status: dict[str, Any], ready: int, now: float, record: Recorder
) -> dict[str, Any]:
    """One reconcile pass: the verdict's status is what the next pass reads."""
    verdict = wait.track(
        BODY,
        status,
        ready,
        4,
        unready=lambda: [STUCK] * (4 - ready),
        now=now,
        record=record,
        metrics=OperatorMetrics(),
    )
    return {"podsNotReady": verdict.status(), "stuck": verdict.stuck, "message": verdict.message}


def test_one_warning_per_stuck_episode_and_a_restart_keeps_the_clock() -> None:
    record = Recorder()
    wait = PodsWait(deadline=600)
    out = _pass(wait, {}, 3, T0, record)
    assert out["podsNotReady"] == {"since": rfc3339(T0), "stuck": False, "pods": []}
    assert not out["stuck"] and record.events == []
    out = _pass(wait, {"podsNotReady": out["podsNotReady"]}, 3, T0 + 599, record)
    assert not out["stuck"] and record.events == []
    out = _pass(wait, {"podsNotReady": out["podsNotReady"]}, 3, T0 + 600, record)
    assert out["stuck"]
    assert out["message"] == (
        "3/4 pods Ready, not all since 2027-01-15T08:00:00Z, past the 600s deadline: "
        "cart-3 Pending: Unschedulable: "
        "0/3 nodes are available (added by a scale-out, holds no slots)"
    )
    assert record.events == [("Warning", "PodsStuck", out["message"])]
    # Later passes, a stale status (our own write not yet seen), a new leader: no repeat.
    _pass(wait, {"podsNotReady": out["podsNotReady"]}, 3, T0 + 700, record)
    _pass(wait, {"podsNotReady": {"since": rfc3339(T0), "stuck": False}}, 3, T0 + 701, record)
    restarted = PodsWait(deadline=600)
    again = _pass(restarted, {"podsNotReady": out["podsNotReady"]}, 3, T0 + 900, record)
    assert again["podsNotReady"]["since"] == rfc3339(T0) and again["stuck"]
    assert [e[1] for e in record.events] == ["PodsStuck"]
    # Recovery: one Normal event with the time it took; the field goes.
    done = _pass(restarted, {"podsNotReady": again["podsNotReady"]}, 4, T0 + 960, record)
    assert done["podsNotReady"] is None and not done["stuck"]
    assert record.events[-1] == ("Normal", "PodsReady", "all 4 pods Ready again after 960s")
    _pass(restarted, {"podsNotReady": again["podsNotReady"]}, 4, T0 + 962, record)  # stale
    assert [e[1] for e in record.events] == ["PodsStuck", "PodsReady"]


def test_an_ordinary_wait_says_nothing_and_an_older_operator_s_condition_starts_the_clock() -> None:
    record = Recorder()
    wait = PodsWait(deadline=60)
    out = _pass(wait, {}, 3, T0, record)
    _pass(wait, {"podsNotReady": out["podsNotReady"]}, 4, T0 + 30, record)
    assert record.events == []  # back within the deadline: no episode to report
    status = {
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "PodsNotReady",
                "lastTransitionTime": rfc3339(T0 - 120),
            }
        ]
    }
    out = _pass(wait, status, 2, T0, record)
    assert out["stuck"] and out["podsNotReady"]["since"] == rfc3339(T0 - 120)
    assert out["message"].startswith(
        f"2/4 pods Ready, not all since {rfc3339(T0 - 120)}, past the 60s deadline: "
    )


def test_the_message_is_bounded() -> None:
    record = Recorder()
    wait = PodsWait(deadline=1)
    long = PodWait("cart-9", "Pending", "Unschedulable", "x" * 5000)
    verdict = wait.track(
        BODY,
        {"podsNotReady": {"since": rfc3339(T0)}},
        0,
        40,
        unready=lambda: [long] * 40,
        now=T0 + 5,
        record=record,
        metrics=None,
    )
    assert len(verdict.message) <= 1024 and len(verdict.pods) == 5
    assert all(len(p) < 300 for p in verdict.pods)
    assert "; and 35 more" in verdict.message or verdict.message.endswith("...")


@pytest.mark.parametrize("bad", [0, 0.5, -1, 86401, float("nan"), float("inf")])
def test_a_bad_deadline_is_one_line_naming_the_field(bad: float) -> None:
    with pytest.raises(ValueError, match=r"^--pods-ready-deadline: .* is outside 1\.\.86400"):
        check_deadline(bad)
