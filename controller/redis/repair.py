"""Finishes or rolls back migrations left open by a crash (ours, redis-cli's, anyone's).

Called by ``Resharder.fix()`` and at the start of every rebalance and drain.
For each open (MIGRATING / IMPORTING) or uncovered slot it counts the slot's
keys on every master and picks the final owner by where the keys are:

* keys on one master only -> that master owns the slot (a migration that had
  not moved a key is rolled back; one that had moved all of them is completed);
* keys on several masters -> the importing side of a live source->target pair
  (the migration is completed: the remaining keys move forward, and REPLACE is
  allowed for BUSYKEY because the source's copy is the one clients were served);
  an importing side whose source failed over (the promoted replica claims the
  slot) imports the rest from the claimant, without REPLACE; otherwise the
  claimed owner, without REPLACE (a conflict stops the repair);
* no keys anywhere -> the migration target if it already claims the slot,
  else the current claimant (nothing to move, only flags to clear).

Then the owner takes the slot with an epoch bump (``SETSLOT NODE`` on itself
while IMPORTING, or SETSLOT NODE + BUMPEPOCH for an uncovered slot), every other
master drops its flags and is told the owner. No key is ever deleted here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from headroom.controller.redis.connection import cmd
from headroom.controller.redis.migrate import Endpoint, MigrateOptions, PairMigrator
from headroom.controller.redis.topology import Node, Topology, cluster_nodes
from headroom.policies.errors import (
    ClusterUnreachable,
    CommandRefused,
    MigrationError,
    UnsafeOperation,
)

log = logging.getLogger(__name__)

EndpointFor = Callable[[Node], Endpoint]


def repair(
    topology: Topology,
    endpoint: EndpointFor,
    options: MigrateOptions,
    *,
    cover_unknown: bool = True,
) -> list[str]:
    """Close every open slot and cover every uncovered one; returns what was done.

    Without ``cover_unknown`` nothing is changed if some uncovered slot is unknown:
    no migration names it and no master holds a key of it, so it may be the data of
    a lost master (whose volume may come back); only a user serves such a slot empty.
    """
    opened = topology.open_slots()
    uncovered = topology.uncovered()
    if not opened and not uncovered:
        return []
    masters = [m for m in topology.masters if m.reachable]
    down = [m for m in topology.masters if not m.reachable and m.slots]
    if down:
        raise ClusterUnreachable(
            f"node {down[0].short} ({down[0].addr}) does not answer; "
            "cannot repair slots while a master is down"
        )
    eps = {m.id: endpoint(m) for m in masters}
    done: list[str] = []
    try:
        if not cover_unknown:
            _refuse_unknown(topology, uncovered, {o.slot for o in opened}, eps)
        for o in opened:
            done.append(
                _fix_slot(o.slot, masters, eps, options, dict(o.migrating), dict(o.importing))
            )
        for slot in uncovered:
            if any(slot == o.slot for o in opened):
                continue
            done.append(_fix_slot(slot, masters, eps, options, {}, {}))
    finally:
        for ep in eps.values():
            ep.client.close()
    for line in done:
        log.info("Repaired %s", line)
    return done


def _refuse_unknown(
    topology: Topology, uncovered: Sequence[int], opened: set[int], eps: Mapping[str, Endpoint]
) -> None:
    """Raise, before any change, if an uncovered slot is unknown: no migration names it,
    no master holds a key of it, and no master's view gives it to a master that answers
    (a slot handed over to a node that never took it is named so; a lost one is not)."""
    bare = [s for s in uncovered if s not in opened]
    if not bare:
        return
    named: set[int] = set()
    for ep in eps.values():
        try:
            lines = cluster_nodes(ep.client, ep.name)
        except ClusterUnreachable as err:
            raise ClusterUnreachable(f"node {ep.name} stopped answering during repair") from err
        named.update(*(line.slots for line in lines if line.id in eps and "master" in line.flags))
    unknown = [s for s in bare if s not in named and not any(_counts(s, eps).values())]
    if unknown:
        raise UnsafeOperation(
            f"{len(uncovered)} slots are not covered at {topology.seed} while the cluster "
            f"holds keys, and nothing says where {len(unknown)} of them were (first: "
            f"{unknown[0]}: no key, no migration, no owner that answers); "
            "run `headroom redis fix` to serve them empty"
        )


def _counts(slot: int, eps: Mapping[str, Endpoint]) -> dict[str, int]:
    out: dict[str, int] = {}
    for nid, ep in eps.items():
        try:
            out[nid] = int(cmd(ep.client, "CLUSTER", "COUNTKEYSINSLOT", slot))
        except ClusterUnreachable as err:
            raise ClusterUnreachable(f"node {ep.name} stopped answering during repair") from err
    return out


def _choose_owner(
    holders: Sequence[str],
    claimants: Sequence[str],
    migrating: Mapping[str, str],
    importing: Mapping[str, str],
    masters: Sequence[Node],
) -> str:
    if len(holders) == 1:
        return holders[0]
    if holders:
        live = [t for t, s in importing.items() if t in holders and s in holders]
        if live:
            return live[0]
        # The source failed over mid-migration: its promoted replica claims the slot and
        # holds the keys not moved yet, while the target still imports from the demoted
        # source. Keys only leave a slot's claimant, so the import goes on from it.
        adopted = [t for t in importing if t in holders and t not in claimants]
        if adopted:
            return adopted[0]
        return next((c for c in claimants if c in holders), holders[0])
    landed = [t for t in migrating.values() if t in claimants]
    if landed:
        return landed[0]
    if claimants:
        return claimants[0]
    if importing:
        return next(iter(importing))
    if migrating:
        return next(iter(migrating))
    return min(masters, key=lambda m: (len(m.slots), m.id)).id


def _fix_slot(
    slot: int,
    masters: Sequence[Node],
    eps: Mapping[str, Endpoint],
    options: MigrateOptions,
    migrating: dict[str, str],
    importing: dict[str, str],
) -> str:
    counts = _counts(slot, eps)
    holders = [nid for nid, c in counts.items() if c > 0]
    claimants = [m.id for m in masters if slot in m.slots]
    final = _choose_owner(holders, claimants, migrating, importing, masters)
    fin = eps[final]
    moved = 0
    for holder in holders:
        if holder == final:
            continue
        src = eps[holder]
        vouched = importing.get(final) == holder and migrating.get(holder) == final
        if final not in claimants and holder in claimants:
            # The owner's own table must name the node it imports from, or it refuses the
            # keys (CLUSTERDOWN: slot not served). It may name nobody: a target importing
            # from a source that failed over dropped the slot with the demoted source and,
            # importing, ignores the promoted replica's claim (Redis keeps an importing slot
            # as the operator set it). Telling it the claimant keeps its IMPORTING flag.
            _cmd(fin, "CLUSTER", "SETSLOT", slot, "NODE", holder)
        if final not in claimants and importing.get(final) != holder:
            _cmd(fin, "CLUSTER", "SETSLOT", slot, "IMPORTING", holder)
            importing[final] = holder
        if holder in claimants and migrating.get(holder) != final:
            _cmd(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", final)
            migrating[holder] = final
        mover = PairMigrator(src, fin, [], options)
        mover.move_keys([slot], replace_on_busykey=vouched)
        moved += counts[holder]
    # The owner takes the slot with a new epoch, so its claim wins over stale ones.
    if final not in claimants:
        if final in importing:
            _cmd(fin, "CLUSTER", "SETSLOT", slot, "NODE", final)
        elif claimants:
            _cmd(fin, "CLUSTER", "SETSLOT", slot, "IMPORTING", claimants[0])
            _cmd(fin, "CLUSTER", "SETSLOT", slot, "NODE", final)
        else:
            # Not ADDSLOTS: the owner's own table may still give the slot to the node
            # that handed it over ("already busy"); SETSLOT NODE to itself takes it either way.
            _cmd(fin, "CLUSTER", "SETSLOT", slot, "NODE", final)
            _cmd(fin, "CLUSTER", "BUMPEPOCH")
    elif final in migrating or final in importing:
        _cmd(fin, "CLUSTER", "SETSLOT", slot, "STABLE")
    for nid, ep in eps.items():
        if nid == final:
            continue
        if nid in importing or nid in migrating:
            _cmd(ep, "CLUSTER", "SETSLOT", slot, "STABLE")
        _cmd(ep, "CLUSTER", "SETSLOT", slot, "NODE", final)
    before = ", ".join(
        [f"{n[:8]}->{t[:8]}" for n, t in migrating.items()]
        + [f"{n[:8]}<-{s[:8]}" for n, s in importing.items()]
    )
    verb = f"moved {moved} keys to" if moved else "settled on"
    return f"slot {slot}: {verb} {final[:8]} (was {before or 'uncovered'})"


def _cmd(ep: Endpoint, *args: object) -> None:
    try:
        cmd(ep.client, *args)
    except ClusterUnreachable as err:
        raise ClusterUnreachable(f"node {ep.name} stopped answering during repair") from err
    except CommandRefused as err:
        shown = " ".join(str(a) for a in args)
        raise MigrationError(f"repair: {ep.name} refused `{shown}`: {err}") from err
