"""A scaler that takes over a migration someone else left half done finishes it.

A leader killed mid-scale-out leaves each slot it was moving at some step of the
protocol (IMPORTING, MIGRATING, part of the keys, SETSLOT NODE on some masters
only). Here those steps are made by hand on real redis-server nodes, one slot per
step, and a fresh :class:`ClusterScaler` (what the standby operator builds) must
converge on the wanted size with every key kept. A slot nobody claims whose keys
sit on one master is such a step too (the source handed it over, the target's
claim is missing): it is repaired, not refused. A slot nobody claims and nobody
holds a key of, with no migration open, may be the data of a lost master: that
is still refused.
"""

from __future__ import annotations

import pytest
import redis

from headroom.controller.provisioning.local import LocalProvisioner
from headroom.controller.redis.connection import NodeAddr
from headroom.controller.redis.membership import settle
from headroom.controller.redis.nodes import CLUSTER_NODE_ARGS
from headroom.controller.redis.scaler import ClusterScaler
from headroom.controller.redis.topology import SLOTS
from headroom.policies.errors import ClusterError
from tests.local.conftest import LocalFactory, cluster_client, load_keys, missing_keys

pytestmark = [pytest.mark.redis, pytest.mark.slow]

# The waits below are bounded by the mechanism they wait for, on the nodes' own timeout.
NODE_TIMEOUT_S = int(CLUSTER_NODE_ARGS[CLUSTER_NODE_ARGS.index("--cluster-node-timeout") + 1]) / 1e3
# A loaded 2-core host (other suites, benches) runs each node's cron late: room for that.
LOAD = 4
# A node joins by handshake (dropped and tried again from gossip if not done within a node
# timeout), and every node pings each one it knows at least every half node timeout, passing
# on a few others: a newcomer is known everywhere, flags clear, within about 2 node timeouts.
JOIN_S = LOAD * 2 * NODE_TIMEOUT_S
# A failover: the master is suspected after a node timeout, failed after another, then the
# new owner's claim spreads by gossip. TAKEOVER skips the first two (its epoch needs no
# vote), so this bound is generous for it.
FAILOVER_S = LOAD * 3 * NODE_TIMEOUT_S

STEPS = (
    "importing",  # SETSLOT IMPORTING on the target only
    "migrating",  # ... and MIGRATING on the source, no key moved
    "half",  # ... half of the slot's keys moved
    "all",  # ... every key moved, no SETSLOT NODE yet
    "node_target",  # ... SETSLOT NODE on the target only
    "node_both",  # ... on the target and the source (the others not told)
    "node_source",  # ... on the source only: nobody claims the slot, its keys are on the target
    "claim_lost",  # the source handed it over, the target claims nothing and has no flag
    "empty_handed",  # a slot with no key handed over by the source only (no flag left)
)


def _client(provisioner: LocalProvisioner, addr: NodeAddr) -> redis.Redis:
    return redis.Redis(host=addr.host, port=addr.port, password=provisioner.auth.password)


def _id(client: redis.Redis) -> str:
    return bytes(client.execute_command("CLUSTER", "MYID")).decode()


def _own_slots(client: redis.Redis) -> set[int]:
    out: set[int] = set()
    for item in _myself(client)[8:]:
        if item.startswith("["):
            continue
        a, _, b = item.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def _myself(client: redis.Redis) -> list[str]:
    """The fields of ``client``'s own CLUSTER NODES line."""
    text: str = client.execute_command("CLUSTER", "NODES").decode()
    return next(x for x in text.splitlines() if "myself" in x).split()


def _joined(
    factory: LocalFactory, replicas: int = 0
) -> tuple[LocalProvisioner, list[redis.Redis], redis.Redis, dict[str, str]]:
    """Three loaded masters (and their replicas), and an empty master that met them all."""
    provisioner, scaler = factory(masters=3, replicas=replicas)
    scaler.close()
    client = cluster_client(provisioner)
    values = load_keys(client, 8_000)
    client.close()
    olds = [_client(provisioner, n.addr) for n in provisioner.list_nodes()]
    new = provisioner.add_node()
    target = _client(provisioner, new.addr)
    olds[0].execute_command("CLUSTER", "MEET", new.addr.host, new.addr.port)
    _settled([*olds, target], "the new node to join")
    return provisioner, olds, target, values


def _where(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"{kwargs['host']}:{kwargs['port']}"


def _views(nodes: list[redis.Redis]) -> dict[str, str]:
    """Each node's CLUSTER NODES (or why it did not answer), by address."""
    out: dict[str, str] = {}
    for c in nodes:
        try:
            out[_where(c)] = c.execute_command("CLUSTER", "NODES").decode()
        except redis.RedisError as err:
            out[_where(c)] = f"no answer: {err}"
    return out


def _shown(views: dict[str, str]) -> str:
    """What a wait saw last, for its timeout message: every node's view of the cluster."""
    return "".join(f"\n--- {where}:\n{text.rstrip()}" for where, text in views.items())


def _settled(nodes: list[redis.Redis], what: str) -> None:
    """Until every node knows every other one and says cluster_state:ok (gossip)."""

    def role(flags: str) -> str:
        return "master" if "master" in flags else "replica"

    def pending() -> str | None:
        views = _views(nodes)
        mine = [
            line.split()
            for text in views.values()
            for line in text.splitlines()
            if "myself" in line
        ]
        roles = {me[0]: role(me[2]) for me in mine}
        why: list[str] = []
        for c in nodes:
            lines = [x.split() for x in views[_where(c)].splitlines() if len(x.split()) > 7]
            try:
                ok = b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO")
            except redis.RedisError:
                ok = False
            fine = all("handshake" not in x[2] and "fail" not in x[2] for x in lines)
            agree = all(roles.get(x[0]) == role(x[2]) for x in lines)  # e.g. a promotion
            if not (ok and fine and agree and len(lines) == len(nodes)):
                why.append(
                    f"{_where(c)}: state_ok={ok} flags_clear={fine} roles_agree={agree} "
                    f"knows={len(lines)}/{len(nodes)}"
                )
        return ("; ".join(why) + _shown(views)) if why else None

    settle(pending, timeout=JOIN_S, what=what)


def _converges(
    provisioner: LocalProvisioner, values: dict[str, str], replicas: int = 0, passes: int = 1
) -> None:
    """A fresh scaler (a new leader's) reaches 4 masters, all slots served, no key lost,
    in at most ``passes`` passes (the operator requeues a pass that met gossip lag)."""
    scaler = ClusterScaler(provisioner, replicas_per_master=replicas, auth=provisioner.auth)
    try:
        for left in range(passes - 1, -1, -1):
            try:
                report = scaler.scale_masters(4)
                break
            except ClusterError as err:
                if not left:
                    nodes = [_client(provisioner, n.addr) for n in provisioner.list_nodes()]
                    raise AssertionError(f"{err}; last seen:{_shown(_views(nodes))}") from err
        status = scaler.status()
    finally:
        scaler.close()
    assert report.masters_after == 4
    assert status.slots_covered == SLOTS and status.open_slots == 0 and status.state_ok
    assert missing_keys(provisioner, values) == []


def _open(step: str, slot: int, src: redis.Redis, tgt: redis.Redis, tgt_addr: NodeAddr) -> None:
    """Flags and keys of ``slot`` as the protocol leaves them at ``step``."""
    if step == "empty_handed":
        return
    tgt.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", _id(src))
    if step == "importing":
        return
    src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", _id(tgt))
    if step == "migrating":
        return
    keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
    assert len(keys) >= 2, "the test needs keys in this slot"
    part = keys[: len(keys) // 2] if step == "half" else keys
    auth = ["AUTH", src.connection_pool.connection_kwargs["password"]]
    src.execute_command("MIGRATE", tgt_addr.host, tgt_addr.port, "", 0, 5000, *auth, "KEYS", *part)


def _hand_over(step: str, slot: int, src: redis.Redis, tgt: redis.Redis) -> None:
    """The SETSLOT NODE part of ``step`` (after every key move: an uncovered slot stops
    the cluster, and MIGRATE with it)."""
    if step in ("node_target", "node_both"):
        tgt.execute_command("CLUSTER", "SETSLOT", slot, "NODE", _id(tgt))
    if step in ("node_both", "node_source", "claim_lost", "empty_handed"):
        src.execute_command("CLUSTER", "SETSLOT", slot, "NODE", _id(tgt))
    if step == "claim_lost":
        tgt.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")


def test_a_fresh_scaler_finishes_a_migration_stopped_at_any_step(
    local_factory: LocalFactory,
) -> None:
    provisioner, olds, target, values = _joined(local_factory)
    src = olds[0]
    mine = sorted(_own_slots(src))
    counts = {s: int(src.execute_command("CLUSTER", "COUNTKEYSINSLOT", s)) for s in mine}
    keyed = [s for s in mine if counts[s] >= 2]
    stopped = dict(zip(STEPS[:-1], keyed[:: len(keyed) // len(STEPS)], strict=False))
    stopped["empty_handed"] = next(s for s in mine if counts[s] == 0)
    new_addr = provisioner.list_nodes()[-1].addr
    for step, slot in stopped.items():
        _open(step, slot, src, target, new_addr)
    for step, slot in stopped.items():
        _hand_over(step, slot, src, target)
    owned = set().union(*(_own_slots(c) for c in [*olds, target]))
    assert not {stopped[x] for x in ("node_source", "claim_lost", "empty_handed")} & owned

    _converges(provisioner, values)


def test_a_slot_nobody_claims_or_holds_while_keys_exist_is_still_refused(
    local_factory: LocalFactory,
) -> None:
    provisioner, olds, target, values = _joined(local_factory)
    src = olds[0]
    empty = next(
        s for s in sorted(_own_slots(src))
        if int(src.execute_command("CLUSTER", "COUNTKEYSINSLOT", s)) == 0
    )  # fmt: skip
    for c in [*olds, target]:  # as if its master were lost and forgotten everywhere
        try:
            c.execute_command("CLUSTER", "DELSLOTS", empty)
        except redis.ResponseError:
            pass  # already unassigned in this node's view
    scaler = ClusterScaler(provisioner, auth=provisioner.auth)
    try:
        with pytest.raises(ClusterError, match="1 slots are not covered"):
            scaler.scale_masters(4)
    finally:
        scaler.close()
    # Refused before anything changed: the slot is still nobody's, every key is in place.
    nodes = [*olds, target]
    assert all(empty not in _own_slots(c) for c in nodes)
    assert sum(int(c.dbsize()) for c in nodes) == len(values)


def test_a_source_failed_over_mid_migration_is_finished_by_a_fresh_scaler(
    local_factory: LocalFactory,
) -> None:
    """The source's replica takes over (a busy source under load) while a slot is half
    moved: the promoted replica claims the slot, the target still imports it from the
    demoted source, and the keys are split between them."""
    provisioner, nodes, target, values = _joined(local_factory, replicas=1)
    src = next(c for c in nodes if "master" in _myself(c)[2])
    new_addr = provisioner.list_nodes()[-1].addr
    slot = next(
        s for s in sorted(_own_slots(src))
        if int(src.execute_command("CLUSTER", "COUNTKEYSINSLOT", s)) >= 2
    )  # fmt: skip
    replica = next(c for c in nodes if _myself(c)[3] == _id(src))
    # The replica must hold every key before it takes over, or the takeover itself loses them.
    acked = int(src.execute_command("WAIT", 1, int(JOIN_S * 1000)))
    assert acked == 1, f"the replica acknowledged nothing: {replica.info('replication')}"
    assert replica.dbsize() == src.dbsize()
    _open("half", slot, src, target, new_addr)
    replica.execute_command("CLUSTER", "FAILOVER", "TAKEOVER")

    def taking_over() -> str | None:
        if slot in _own_slots(replica):
            return None
        return f"slot {slot} not in {_where(replica)}'s own slots" + _shown(_views(nodes))

    settle(taking_over, timeout=FAILOVER_S, what="the replica to take over")

    # The demoted source tells the target it is a replica now: the target drops the
    # source's slots from its table, and while it imports the slot it ignores the promoted
    # replica's claim, so the slot is nobody's in its view and it says cluster_state:fail.
    # A new leader meets this whenever gossip is faster than it (it was not, mostly).
    def target_saw_demotion() -> str | None:
        text = _views([target])[_where(target)]
        line = next(x for x in text.splitlines() if x.startswith(_id(src)))
        return None if "slave" in line.split()[2] else f"the target sees the source as: {line}"

    settle(target_saw_demotion, timeout=FAILOVER_S, what="the target to see the demotion")
    assert b"cluster_state:fail" in target.execute_command("CLUSTER", "INFO")

    _converges(provisioner, values, replicas=1, passes=3)
