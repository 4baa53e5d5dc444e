"""What a lost node leaves behind, as the scaler reads it before any resize (heal.assess)."""

from __future__ import annotations

from headroom.controller.redis.heal import assess
from headroom.controller.redis.topology import Node, Topology


def node(
    id_: str,
    role: str = "master",
    slots: range = range(0),
    master: str | None = None,
    flags: tuple[str, ...] = (),
    reachable: bool = True,
) -> Node:
    return Node(
        id=id_ * 40,
        host=f"10.0.0.{ord(id_)}",
        port=6379,
        role=role,
        master_id=master * 40 if master else None,
        flags=(role if role == "master" else "slave", *flags),
        slots=frozenset(slots),
        reachable=reachable,
    )


def ids(*names: str) -> set[str]:
    return {n * 40 for n in names}


A, B, C = range(5461), range(5461, 10923), range(10923, 16384)


def test_a_whole_cluster_has_no_damage() -> None:
    topo = Topology("x", (node("a", slots=A), node("b", slots=B), node("c", slots=C)))
    assert assess(topo, ids("a", "b", "c")).whole


def test_a_lost_master_with_a_live_replica_fails_over() -> None:
    topo = Topology(
        "x",
        (
            node("a", slots=A, flags=("fail",), reachable=False),
            node("b", slots=B),
            node("c", slots=C),
            node("d", role="replica", master="a"),
        ),
    )
    damage = assess(topo, ids("b", "c", "d", "e"))  # e: the blank replacement pod
    assert [n.node_id[0] for n in damage.failing_over] == ["a"]
    assert damage.failing_over[0].replicas == ("d" * 40,)
    assert not damage.slots_lost and not damage.gone
    assert "failing over aaaaaaaa (10.0.0.97:6379, master with 5461 slots)" in damage.describe()


def test_a_lost_master_whose_replica_is_lost_too_has_lost_its_slots() -> None:
    topo = Topology(
        "x",
        (
            node("a", slots=A, reachable=False),
            node("b", slots=B),
            node("c", slots=C),
            node("d", role="replica", master="a", flags=("fail?",)),
        ),
    )
    damage = assess(topo, ids("b", "c"))
    assert [n.node_id[0] for n in damage.slots_lost] == ["a"] and damage.lost_slots == 5461
    assert [n.node_id[0] for n in damage.gone] == ["d"]


def test_after_failover_the_old_master_and_a_dead_replica_are_to_forget() -> None:
    topo = Topology(
        "x",
        (
            node("a", flags=("fail",), reachable=False),  # failed over: no slots left
            node("d", slots=A),
            node("b", slots=B),
            node("c", slots=C),
            node("e", role="replica", master="b", flags=("fail",), reachable=False),
        ),
    )
    damage = assess(topo, ids("b", "c", "d"))
    assert sorted(n.node_id[0] for n in damage.gone) == ["a", "e"]
    assert not damage.failing_over and not damage.slots_lost


def test_a_node_that_answers_under_its_id_is_not_lost_even_if_flagged() -> None:
    """A pod back from its volume answers with its old id (gossip may still flag it)."""
    topo = Topology(
        "x",
        (node("a", slots=A, flags=("fail?",)), node("b", slots=B), node("c", slots=C)),
    )
    assert assess(topo, ids("a", "b", "c")).whole


def test_a_lost_master_whose_slots_a_promoted_replica_claims_has_not_lost_them() -> None:
    """The node asked still credits the dead master (gossip lags); its replica already won."""
    topo = Topology(
        "x",
        (
            node("a", slots=A, flags=("fail?",), reachable=False),
            node("d", slots=A),  # the promoted replica, as it sees itself
            node("b", slots=B),
            node("c", slots=C),
        ),
    )
    damage = assess(topo, ids("b", "c", "d"))
    assert not damage.slots_lost
    assert [n.replicas for n in damage.failing_over] == [("d" * 40,)]
