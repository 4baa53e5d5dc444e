"""Pure slot planning: a balanced target slot map reached with the fewest slot moves.

Called by the resharder (rebalance, drain, dry runs) and tested on its own. It
knows nothing of Redis: it takes who owns which slot (and, when known, how many
keys each slot holds) and returns the moves.

Balance: every master that takes part (weight > 0) ends with its weighted share
of the 16384 slots, rounded by largest remainder, so with equal weights the
counts differ by at most one. Fewest moves: only masters above their share give
slots away, exactly their excess, so the number of moves is the sum of the
excesses, the least any plan reaching those counts can make. A source gives its
highest slots (its ranges stay whole and keys stay balanced along with slots),
except that a few empty slots go first when new masters join: each newcomer
can then own a slot before any key moves (clients learn of it from CLUSTER
SLOTS; see the resharder).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

from headroom.policies.errors import InputError, UnsafeOperation
from headroom.policies.jsonable import fields_json

SLOTS = 16384


@dataclass(frozen=True)
class SlotMove:
    slot: int
    source: str
    target: str


@dataclass(frozen=True)
class PairSummary:
    source: str
    target: str
    slots: int
    keys: int
    bytes: int


def _frozen(d: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class SlotPlan:
    """The moves, the slot counts before and after, and key/byte estimates per slot."""

    moves: tuple[SlotMove, ...]
    before: Mapping[str, int]
    after: Mapping[str, int]
    slot_keys: Mapping[int, int] = field(default_factory=lambda: _frozen({}))
    key_bytes: Mapping[str, float] = field(default_factory=lambda: _frozen({}))

    @property
    def slots(self) -> int:
        return len(self.moves)

    @property
    def keys(self) -> int:
        return sum(self.slot_keys.get(m.slot, 0) for m in self.moves)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.pairs())

    @property
    def empty(self) -> bool:
        return not self.moves

    def pairs(self) -> list[PairSummary]:
        grouped: dict[tuple[str, str], list[int]] = {}
        for m in self.moves:
            grouped.setdefault((m.source, m.target), []).append(m.slot)
        out = []
        for (src, tgt), slots in grouped.items():
            keys = sum(self.slot_keys.get(s, 0) for s in slots)
            out.append(
                PairSummary(src, tgt, len(slots), keys, int(keys * self.key_bytes.get(src, 0)))
            )
        return sorted(out, key=lambda p: (p.source, p.target))

    def to_json(self) -> dict[str, Any]:
        pairs = [asdict(p) for p in self.pairs()]
        return {**fields_json(self, "slots", "keys", "bytes", "before", "after"), "pairs": pairs}


def effective_weights(
    owners: Mapping[str, Collection[int]],
    weights: Mapping[str, float] | None,
    *,
    use_empty_masters: bool,
    drain: Collection[str] = (),
) -> dict[str, float]:
    """Weight per master: given, else 1; 0 for drained masters and (unless asked) empty ones."""
    given = dict(weights or {})
    for node, w in given.items():
        if node not in owners:
            raise InputError(f"weight for unknown master {node!r}")
        if not w >= 0:  # also catches NaN
            raise InputError(f"weight for master {node[:8]} must be >= 0, got {w}")
    out: dict[str, float] = {}
    for node, slots in owners.items():
        if node in drain:
            out[node] = 0.0
        elif node in given:
            out[node] = float(given[node])
        elif not slots and not use_empty_masters:
            out[node] = 0.0
        else:
            out[node] = 1.0
    if sum(out.values()) <= 0:
        if drain and all(out[n] == 0 for n in owners if n not in drain):
            raise UnsafeOperation(
                "refusing to drain the last master: no other master would hold slots"
            )
        raise InputError("weights sum to zero: no master would hold any slot")
    return out


def target_counts(current: Mapping[str, int], weights: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder shares of 16384 slots; ties go to masters holding more (fewer moves)."""
    total = sum(weights.values())
    quotas = {n: SLOTS * weights[n] / total for n in current}
    counts = {n: int(q) for n, q in quotas.items()}
    left = SLOTS - sum(counts.values())
    order = sorted(current, key=lambda n: (-(quotas[n] - counts[n]), -current[n], n))
    for n in order[:left]:
        counts[n] += 1
    return counts


def plan_slots(
    owners: Mapping[str, Iterable[int]],
    *,
    weights: Mapping[str, float] | None = None,
    use_empty_masters: bool = True,
    drain: Collection[str] = (),
    slot_keys: Mapping[int, int] | None = None,
    key_bytes: Mapping[str, float] | None = None,
) -> SlotPlan:
    """Moves that bring every master to its share, each slot moved at most once."""
    held = {n: sorted(set(s)) for n, s in owners.items()}
    keys = dict(slot_keys or {})
    w = effective_weights(held, weights, use_empty_masters=use_empty_masters, drain=drain)
    before = {n: len(s) for n, s in held.items()}
    if drain:
        after = _drain_counts(before, w, drain)
    else:
        after = target_counts(before, w)

    # Each giver offers its excess, fewest keys first (then lowest slot, for stable plans).
    newcomers = sum(1 for n in held if before[n] == 0 and after[n] > 0)
    offers: list[list[tuple[int, str]]] = []
    for n in sorted(held):
        excess = before[n] - after[n]
        if excess > 0:
            ranked = _give_order(held[n], keys, newcomers)
            offers.append([(s, n) for s in ranked[:excess]])
    # How many slots each giver sends each taker: the stream interleaves givers and
    # always feeds the taker furthest from its share, so every giver feeds every
    # taker in proportion and several disjoint pairs can run at once.
    stream: list[str] = []
    for i in range(max((len(o) for o in offers), default=0)):
        stream.extend(o[i][1] for o in offers if i < len(o))
    need = {n: after[n] - before[n] for n in held if after[n] > before[n]}
    given = dict.fromkeys(need, 0)
    flow: dict[tuple[str, str], int] = {}
    for src in stream:
        if not need:  # more offered than wanted only when slots are claimed twice
            break
        tgt = min(need, key=lambda n: (given[n] / need[n], n))
        flow[(src, tgt)] = flow.get((src, tgt), 0) + 1
        given[tgt] += 1
        if given[tgt] == need[tgt]:
            need.pop(tgt)
            given.pop(tgt)
    # Each giver's list is cut into one contiguous block per taker, after handing
    # each newcomer one empty slot if the giver has one.
    moves: list[SlotMove] = []
    has_empty: set[str] = set()
    for offer in offers:
        src = offer[0][1]
        left = {t: c for (g, t), c in sorted(flow.items()) if g == src}
        slots = [s for s, _ in offer]
        for t in left:
            if before[t] == 0 and t not in has_empty and left[t] > 0:
                empty = next((s for s in slots if keys and keys.get(s, 1) == 0), None)
                if empty is not None:
                    slots.remove(empty)
                    moves.append(SlotMove(empty, src, t))
                    left[t] -= 1
                    has_empty.add(t)
        i = 0
        for t, count in left.items():
            moves.extend(SlotMove(s, src, t) for s in slots[i : i + count])
            i += count
    return SlotPlan(
        moves=tuple(moves),
        before=_frozen(before),
        after=_frozen(after),
        slot_keys=_frozen({m.slot: keys.get(m.slot, 0) for m in moves}),
        key_bytes=_frozen(key_bytes or {}),
    )


def _give_order(slots: list[int], keys: Mapping[int, int], newcomers: int) -> list[int]:
    """Highest slots first (ranges stay whole), but a few empty ones up front for newcomers."""
    ranked = sorted(slots, reverse=True)
    empties = [s for s in ranked if keys and keys.get(s, 1) == 0][:newcomers]
    chosen = set(empties)
    return empties + [s for s in ranked if s not in chosen]


def _drain_counts(
    before: Mapping[str, int], weights: Mapping[str, float], drain: Collection[str]
) -> dict[str, int]:
    """Only drained masters give; each of their slots goes to the least-filled taker."""
    after = {n: (0 if n in drain else c) for n, c in before.items()}
    takers = [n for n in before if n not in drain and weights[n] > 0]
    for _ in range(sum(before[n] for n in drain)):
        n = min(takers, key=lambda t: ((after[t] + 1) / weights[t], -before[t], t))
        after[n] += 1
    return after


def even_ranges(masters: int) -> list[tuple[int, int]]:
    """The 16384 slots cut into ``masters`` contiguous ranges whose sizes differ by at most one."""
    base, extra = divmod(SLOTS, masters)
    out: list[tuple[int, int]] = []
    first = 0
    for i in range(masters):
        size = base + (1 if i < extra else 0)
        out.append((first, first + size - 1))
        first += size
    return out
