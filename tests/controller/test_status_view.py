"""What `headroom status` calls a target's next action."""

from __future__ import annotations

from typing import Any

from headroom.controller.operator.status import next_actions


def _row(at: str, target: str, src: int, dst: int) -> dict[str, Any]:
    return {"at": at, "target": target, "fromUnits": src, "toUnits": dst, "reason": "r"}


def test_the_next_action_is_each_targets_first_order_after_the_last_pass() -> None:
    # The status's plan starts with the pass's own order (already made) and runs in time
    # order over every target; the next action of each is its first one after the pass.
    last = "2026-12-02T16:49:43.302221Z"
    plan = [
        _row(last, "web", 2, 11),
        _row("2026-12-02T17:06:43.302221Z", "web", 11, 12),
        _row("2026-12-02T17:10:00Z", "cart", 3, 5),
        _row("2026-12-02T18:42:43.302221Z", "web", 9, 8),
    ]
    nxt = next_actions(plan, last)
    assert (nxt["web"]["fromUnits"], nxt["web"]["toUnits"]) == (11, 12)
    assert nxt["cart"]["toUnits"] == 5
    # Before any pass is recorded, the plan's first row per target.
    assert next_actions(plan, None)["web"]["toUnits"] == 11
    # Nothing ahead: no next action.
    assert next_actions(plan[:1], last) == {}
