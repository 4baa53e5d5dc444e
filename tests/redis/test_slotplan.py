"""The pure slot planner: balance, fewest moves, weights, empty masters, drains."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headroom.controller.redis.slotplan import SLOTS, plan_slots, target_counts
from headroom.policies.errors import InputError, UnsafeOperation


def split(counts: list[int]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    start = 0
    for i, c in enumerate(counts):
        out[f"n{i}"] = list(range(start, start + c))
        start += c
    return out


def apply(owners: dict[str, list[int]], plan) -> dict[str, set[int]]:
    held = {n: set(s) for n, s in owners.items()}
    for m in plan.moves:
        assert m.slot in held[m.source]
        held[m.source].remove(m.slot)
        held[m.target].add(m.slot)
    return held


@st.composite
def clusters(draw):
    n = draw(st.integers(1, 8))
    cuts = sorted(draw(st.lists(st.integers(0, SLOTS), min_size=n - 1, max_size=n - 1)))
    bounds = [0, *cuts, SLOTS]
    return [bounds[i + 1] - bounds[i] for i in range(n)]


@pytest.mark.slow
@settings(max_examples=80, deadline=None)
@given(clusters())
def test_balanced_within_one_slot_with_the_fewest_moves(counts):
    owners = split(counts)
    plan = plan_slots(owners, use_empty_masters=True)
    held = apply(owners, plan)
    sizes = [len(s) for s in held.values()]
    assert sum(sizes) == SLOTS and max(sizes) - min(sizes) <= 1
    assert dict(plan.after) == {n: len(s) for n, s in held.items()}
    # Fewest moves: exactly the excess above each master's final share.
    assert plan.slots == sum(max(0, c - plan.after[n]) for n, c in plan.before.items())
    assert len({m.slot for m in plan.moves}) == plan.slots  # no slot moves twice


@settings(max_examples=60, deadline=None)
@given(clusters(), st.data())
def test_weights_set_shares(counts, data):
    owners = split(counts)
    weights = {n: data.draw(st.sampled_from([0.0, 1.0, 2.0, 3.5])) for n in owners}
    if sum(weights.values()) == 0:
        with pytest.raises(InputError, match="sum to zero"):
            plan_slots(owners, weights=weights)
        return
    plan = plan_slots(owners, weights=weights)
    held = apply(owners, plan)
    total = sum(weights.values())
    for n, slots in held.items():
        assert abs(len(slots) - SLOTS * weights[n] / total) < 1
        if weights[n] == 0:
            assert not slots


def test_empty_masters_are_used_only_when_asked():
    owners = {"a": list(range(8192)), "b": list(range(8192, SLOTS)), "c": []}
    assert plan_slots(owners, use_empty_masters=False).empty
    plan = plan_slots(owners, use_empty_masters=True)
    assert dict(plan.after) == {"a": 5462, "b": 5461, "c": 5461}
    assert plan.slots == 5461


def test_newcomers_get_an_empty_slot_then_contiguous_blocks_on_disjoint_pairs():
    owners = {"a": list(range(8192)), "b": list(range(8192, SLOTS)), "c": [], "d": []}
    keys = {s: (0 if s in (100, 9000) else 5) for s in range(SLOTS)}
    plan = plan_slots(owners, slot_keys=keys)
    for newcomer in ("c", "d"):
        got = [m.slot for m in plan.moves if m.target == newcomer]
        assert any(keys[s] == 0 for s in got)
    assert plan.keys == 5 * (plan.slots - 2)
    pairs = {(p.source, p.target): p.slots for p in plan.pairs()}
    # Two disjoint pairs can run at once, each moving a contiguous block after its empty slot.
    assert set(pairs) == {("a", "c"), ("b", "d")}
    for src, tgt in pairs:
        got = sorted(m.slot for m in plan.moves if (m.source, m.target) == (src, tgt))
        rest = [s for s in got if keys[s]]
        assert rest[-1] - rest[0] == len(rest) - 1


def test_drain_moves_only_the_drained_slots():
    owners = split([4000, 4000, 4000, 4384])
    plan = plan_slots(owners, drain=["n3"])
    assert {m.source for m in plan.moves} == {"n3"} and plan.slots == 4384
    assert plan.after["n3"] == 0
    sizes = sorted(plan.after[n] for n in ("n0", "n1", "n2"))
    assert sizes[-1] - sizes[0] <= 1


def test_drain_of_the_last_master_is_unsafe():
    with pytest.raises(UnsafeOperation, match="last master"):
        plan_slots({"a": list(range(SLOTS))}, drain=["a"])


def test_negative_weight_and_unknown_weight_are_input_errors():
    owners = split([8192, 8192])
    with pytest.raises(InputError):
        plan_slots(owners, weights={"n0": -1.0})
    with pytest.raises(InputError):
        plan_slots(owners, weights={"zz": 1.0})


def test_target_counts_prefer_the_masters_holding_more():
    counts = target_counts(
        {"a": 5462, "b": 5461, "c": 5461, "d": 0, "e": 0}, dict.fromkeys("abcde", 1.0)
    )
    assert counts == {"a": 3277, "b": 3277, "c": 3277, "d": 3277, "e": 3276}
