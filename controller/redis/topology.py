"""Reads a Redis Cluster's shape (CLUSTER NODES of every node) into frozen values.

Used by the resharder (to plan and to repair) and by ``headroom redis status``.
Each master's own ``myself`` line is the truth about the slots it claims and
the migrations it has open (``[slot->-target]``, ``[slot-<-source]``); the
seed's view supplies the node list and the slots of nodes that do not answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from headroom.controller.redis.connection import Client, Connect, NodeAddr, as_text, cmd
from headroom.policies.errors import (
    AuthRefused,
    ClusterError,
    ClusterUnreachable,
    CommandRefused,
    InputError,
    NodeTimeout,
    NotACluster,
    UnknownNode,
)
from headroom.policies.jsonable import fields_json

SLOTS = 16384


@dataclass(frozen=True)
class Node:
    """One node of the cluster as seen right now."""

    id: str
    host: str
    port: int
    role: str  # "master" or "replica"
    master_id: str | None
    flags: tuple[str, ...]
    slots: frozenset[int]
    migrating: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    importing: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    keys: int | None = None  # DBSIZE; None when the node did not answer
    state: str | None = None  # cluster_state from CLUSTER INFO
    reachable: bool = True

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def short(self) -> str:
        return self.id[:8]

    @property
    def is_master(self) -> bool:
        return self.role == "master"

    @property
    def failed(self) -> bool:
        return "fail" in self.flags or "fail?" in self.flags or not self.reachable

    def ranges(self) -> list[tuple[int, int]]:
        return slot_ranges(self.slots)

    def to_json(self) -> dict[str, Any]:
        return {
            **fields_json(self, "id", "addr", "role", "master_id", "flags"),
            "slots": len(self.slots),
            "ranges": [f"{a}-{b}" if a != b else str(a) for a, b in self.ranges()],
            **fields_json(self, "keys", "state", "reachable"),
            "migrating": {str(s): t for s, t in sorted(self.migrating.items())},
            "importing": {str(s): t for s, t in sorted(self.importing.items())},
        }


@dataclass(frozen=True)
class OpenSlot:
    """A slot some node has marked MIGRATING or IMPORTING."""

    slot: int
    migrating: Mapping[str, str]  # node id -> target id
    importing: Mapping[str, str]  # node id -> source id

    def describe(self) -> str:
        parts = [f"{n[:8]}->{t[:8]}" for n, t in self.migrating.items()]
        parts += [f"{n[:8]}<-{s[:8]}" for n, s in self.importing.items()]
        return f"slot {self.slot} ({', '.join(parts)})"


@dataclass(frozen=True)
class Topology:
    """Every node, the slots each master claims, open migrations, and health."""

    seed: str
    nodes: tuple[Node, ...]

    @property
    def masters(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.is_master)

    @property
    def replicas(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if not n.is_master)

    def node(self, node_id: str) -> Node:
        """The node whose id is ``node_id`` or starts with it (a unique prefix)."""
        exact = [n for n in self.nodes if n.id == node_id]
        if exact:
            return exact[0]
        found = [n for n in self.nodes if node_id and n.id.startswith(node_id)]
        if len(found) == 1:
            return found[0]
        if not found:
            raise UnknownNode(f"node {node_id!r} is not in the cluster at {self.seed}")
        raise UnknownNode(f"node id prefix {node_id!r} matches {len(found)} nodes at {self.seed}")

    def owners(self) -> dict[int, str]:
        """slot -> the master that claims it (first claimant wins if two do)."""
        out: dict[int, str] = {}
        for m in self.masters:
            for s in m.slots:
                out.setdefault(s, m.id)
        return out

    def uncovered(self) -> list[int]:
        owned = self.owners()
        return [s for s in range(SLOTS) if s not in owned]

    def open_slots(self) -> list[OpenSlot]:
        slots: dict[int, tuple[dict[str, str], dict[str, str]]] = {}
        for n in self.masters:
            for s, t in n.migrating.items():
                slots.setdefault(s, ({}, {}))[0][n.id] = t
            for s, src in n.importing.items():
                slots.setdefault(s, ({}, {}))[1][n.id] = src
        return [
            OpenSlot(s, MappingProxyType(m), MappingProxyType(i))
            for s, (m, i) in sorted(slots.items())
        ]

    def problems(self) -> list[str]:
        out: list[str] = []
        for n in self.nodes:
            if not n.reachable:
                out.append(f"node {n.short} ({n.addr}) does not answer")
            elif "fail" in n.flags or "fail?" in n.flags:
                out.append(f"node {n.short} ({n.addr}) is flagged {','.join(n.flags)}")
            elif n.state != "ok":
                out.append(f"node {n.short} ({n.addr}) reports cluster_state:{n.state}")
        uncovered = self.uncovered()
        if uncovered:
            out.append(f"{len(uncovered)} slots are not covered (first: {uncovered[0]})")
        out.extend(f"open {o.describe()}" for o in self.open_slots())
        return out

    @property
    def healthy(self) -> bool:
        return not self.problems()

    def to_json(self) -> dict[str, Any]:
        masters = self.masters
        return {
            "seed": self.seed,
            "healthy": self.healthy,
            "problems": self.problems(),
            "masters": len(masters),
            "replicas": len(self.replicas),
            "slots_covered": SLOTS - len(self.uncovered()),
            "keys": sum(m.keys or 0 for m in masters),
            "open_slots": [
                {"slot": o.slot, "migrating": dict(o.migrating), "importing": dict(o.importing)}
                for o in self.open_slots()
            ],
            "nodes": [n.to_json() for n in self.nodes],
        }


def slot_ranges(slots: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted slots folded into inclusive ``(first, last)`` ranges."""
    out: list[tuple[int, int]] = []
    for s in sorted(slots):
        if out and out[-1][1] == s - 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


@dataclass(frozen=True)
class _Line:
    id: str
    host: str
    port: int
    flags: tuple[str, ...]
    master_id: str | None
    slots: frozenset[int]
    migrating: dict[int, str]
    importing: dict[int, str]
    link: str = "connected"  # link-state column: connected | disconnected


def parse_nodes(text: str) -> list[_Line]:
    """Parse CLUSTER NODES output (Redis 7: ``ip:port@cport[,hostname]``)."""
    lines: list[_Line] = []
    for raw in text.splitlines():
        parts = raw.split()
        if len(parts) < 8:
            continue
        addr = parts[1].split("@", 1)[0]
        host, _, port = addr.rpartition(":")
        flags = tuple(parts[2].split(","))
        slots: set[int] = set()
        migrating: dict[int, str] = {}
        importing: dict[int, str] = {}
        for item in parts[8:]:
            if item.startswith("["):
                body = item.strip("[]")
                if "->-" in body:
                    s, t = body.split("->-")
                    migrating[int(s)] = t
                elif "-<-" in body:
                    s, src = body.split("-<-")
                    importing[int(s)] = src
            elif "-" in item:
                a, b = item.split("-")
                slots.update(range(int(a), int(b) + 1))
            else:
                slots.add(int(item))
        lines.append(
            _Line(
                id=parts[0],
                host=host,
                port=int(port) if port.isdigit() else 0,
                flags=flags,
                master_id=None if parts[3] == "-" else parts[3],
                slots=frozenset(slots),
                migrating=migrating,
                importing=importing,
                link=parts[7],
            )
        )
    return lines


def cluster_nodes(client: Client, where: str) -> list[_Line]:
    """CLUSTER NODES of one node, with connection and mode errors said for a user."""
    try:
        raw = cmd(client, "CLUSTER", "NODES")
    except AuthRefused as err:
        raise ClusterUnreachable(f"Redis at {where} refused authentication: {err}") from err
    except NodeTimeout as err:
        raise ClusterUnreachable(f"Redis at {where} did not answer in time") from err
    except ClusterUnreachable as err:
        if _auth_problem(err):  # RESP3's HELLO fails this way when a password is missing
            raise ClusterUnreachable(
                f"Redis at {where} requires authentication (a password or ACL user)"
            ) from err
        raise ClusterUnreachable(f"cannot reach Redis at {where}: {err}") from err
    except CommandRefused as err:
        if _auth_problem(err):
            raise ClusterUnreachable(f"Redis at {where} refused authentication: {err}") from err
        if "cluster support disabled" in str(err).lower():
            raise NotACluster(f"Redis at {where} is not running in cluster mode") from err
        raise ClusterUnreachable(f"Redis at {where} refused CLUSTER NODES: {err}") from err
    return parse_nodes(as_text(raw))


def _auth_problem(err: BaseException) -> bool:
    text = str(err).upper()
    return any(w in text for w in ("NOAUTH", "WRONGPASS", "NOPERM", "AUTHENTICATED"))


def cluster_state(info: str) -> str | None:
    """``cluster_state`` (``ok``, ``fail``) from CLUSTER INFO's text; None if absent."""
    for row in info.splitlines():
        if row.startswith("cluster_state:"):
            return row.split(":", 1)[1].strip()
    return None


def read_topology(seed: str, client_for: Connect) -> Topology:
    """Ask the seed for the node list, then every node for its own claims and state."""
    try:
        at = NodeAddr.parse(seed)
    except InputError as err:
        raise ClusterUnreachable(str(err)) from err
    host, port = at.host, at.port
    seed_lines = cluster_nodes(client_for(host, port), seed)
    nodes: list[Node] = []
    for line in seed_lines:
        if "noaddr" in line.flags or "handshake" in line.flags or not line.port:
            continue
        host_n = host if "myself" in line.flags and line.host in ("", "0.0.0.0") else line.host
        own: _Line | None = None
        keys: int | None = None
        state: str | None = None
        reachable = True
        try:
            client = client_for(host_n, line.port)
            own = next(
                x for x in cluster_nodes(client, f"{host_n}:{line.port}") if "myself" in x.flags
            )
            keys = int(cmd(client, "DBSIZE"))
            state = cluster_state(as_text(cmd(client, "CLUSTER", "INFO")))
        except NotACluster:
            raise
        except (ClusterError, StopIteration):
            reachable = False
        src = own if own is not None and own.id == line.id else line
        is_master = "master" in src.flags
        nodes.append(
            Node(
                id=line.id,
                host=host_n,
                port=line.port,
                role="master" if is_master else "replica",
                master_id=src.master_id,
                flags=tuple(f for f in line.flags if f != "myself"),
                slots=src.slots if is_master else frozenset(),
                migrating=MappingProxyType(dict(src.migrating)),
                importing=MappingProxyType(dict(src.importing)),
                keys=keys,
                state=state,
                reachable=reachable,
            )
        )
    nodes.sort(key=lambda n: (n.role != "master", n.port, n.host))
    return Topology(seed=seed, nodes=tuple(nodes))
