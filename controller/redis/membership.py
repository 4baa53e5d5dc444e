"""Cluster membership: MEET a node (or a full mesh of them), FORGET nodes everywhere,
RESET a node that left, and wait until the nodes agree (settle).

The one place these cluster commands are sent; their errors (already translated by
the client boundary, ``redis/connection.py``) are said with the node and command.
Callers: the scaler (``redis/scaler.py``: new nodes join, retired nodes leave) and the
resharder (``redis/resharder.py``: ``meet`` on request, forgetting masters it emptied).
Each function takes a client and the address it is talking to (for the message).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from headroom.controller.redis.connection import Client, NodeAddr, cmd
from headroom.controller.redis.topology import Node
from headroom.policies.errors import ClusterError, ClusterUnreachable, CommandRefused, HeadroomError


def meet(client: Client, where: str, peer: NodeAddr) -> None:
    """The node at ``where`` MEETs ``peer``."""
    try:
        cmd(client, "CLUSTER", "MEET", peer.host, peer.port)
    except ClusterError as err:
        raise ClusterUnreachable(f"{where}: CLUSTER MEET {peer} failed: {err}") from err


def forget(client: Client, where: str, node_id: str) -> None:
    """The node at ``where`` forgets ``node_id`` (already unknown to it: nothing to do)."""
    try:
        cmd(client, "CLUSTER", "FORGET", node_id)
    except CommandRefused as err:
        if "unknown node" not in str(err).lower():
            raise ClusterError(f"{where}: CLUSTER FORGET {node_id}: {err}") from err
    except ClusterError as err:
        raise ClusterUnreachable(f"{where}: CLUSTER FORGET {node_id} failed: {err}") from err


def meet_mesh(
    client_for: Callable[[NodeAddr], Client],
    known: Iterable[NodeAddr],
    newcomers: Iterable[NodeAddr],
) -> None:
    """Each newcomer MEETs every known node (and earlier newcomers) directly.

    A full mesh of MEETs takes a blink; waiting for gossip to spread one MEET
    takes seconds.
    """
    peers = list(dict.fromkeys(known))
    for addr in newcomers:
        client = client_for(addr)
        for peer in peers:
            if peer != addr:
                meet(client, str(addr), peer)
        peers.append(addr)


def forget_everywhere(
    client_for: Callable[[NodeAddr], Client], nodes: Iterable[Node], node_ids: Sequence[str]
) -> None:
    """Every node in ``nodes`` (but those leaving) forgets each of ``node_ids``."""
    for node in nodes:
        if node.id in node_ids:
            continue
        client = client_for(NodeAddr(node.host, node.port))
        for node_id in node_ids:
            forget(client, node.addr, node_id)


def replicate(client: Client, where: str, master_id: str) -> None:
    """The node at ``where`` becomes a replica of ``master_id`` (CLUSTER REPLICATE)."""
    try:
        cmd(client, "CLUSTER", "REPLICATE", master_id)
    except ClusterError as err:
        raise ClusterError(f"{where}: CLUSTER REPLICATE {master_id} failed: {err}") from err


def reset(client: Client, where: str, *, discard_keys: bool) -> None:
    """Blank the node at ``where`` after it left (CLUSTER RESET HARD), within FORGET's
    60 s ban so it cannot gossip back in. ``discard_keys``: FLUSHALL first (the scaler's
    retired or stray nodes, whose slots are elsewhere); otherwise only an empty node is
    flushed, and a master still holding keys refuses the reset."""
    try:
        if discard_keys or int(cmd(client, "DBSIZE")) == 0:
            cmd(client, "FLUSHALL")
    except CommandRefused:
        pass  # a replica refuses FLUSHALL; RESET HARD flushes it anyway
    except ClusterError as err:
        raise ClusterUnreachable(f"{where}: FLUSHALL failed: {err}") from err
    try:
        cmd(client, "CLUSTER", "RESET", "HARD")
    except ClusterError as err:
        raise ClusterError(f"{where}: CLUSTER RESET HARD failed: {err}") from err


def settle(
    pending: Callable[[], str | None], *, timeout: float, what: str, poll: float = 0.1
) -> None:
    """Wait until ``pending()`` returns None (settled); anything else is why not yet. A
    node mid-handshake may refuse (a redis or cluster error counts as not yet); after
    ``timeout`` seconds: :class:`ClusterError` with the last reason."""
    deadline = time.monotonic() + timeout
    why: str | None = ""
    while True:
        try:
            why = pending()
        except HeadroomError as err:
            why = str(err)
        if why is None:
            return
        if time.monotonic() > deadline:
            reason = f": {why}" if why else ""
            raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}{reason}")
        time.sleep(poll)
