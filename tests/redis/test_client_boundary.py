"""The Redis client boundary (``controller/redis/connection.py``) against real servers:
every redis-py failure comes out as the project's error, one line, without secrets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import redis

from headroom.controller.redis.connection import RedisAuth, cmd, make_connect, pipelined
from headroom.policies.errors import (
    AuthRefused,
    ClusterUnreachable,
    CommandRefused,
    HeadroomError,
    NodeTimeout,
)
from tests.support.procs import free_ports
from tests.support.redis_cluster import RedisNode


@pytest.fixture
def silent_node() -> Iterator[tuple[str, int]]:
    """A TCP port that accepts connections and never answers (a hung node)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[:2]
    stop.set()
    thread.join(timeout=5)
    for conn in accepted:
        conn.close()
    server.close()


def test_error_reply_is_command_refused_and_pipelines_keep_their_places(
    plain_redis: RedisNode,
) -> None:
    client = make_connect(client_name="headroom-test")(plain_redis.host, plain_redis.port)
    with pytest.raises(CommandRefused, match="unknown command") as caught:
        cmd(client, "NOSUCHCOMMAND")
    assert isinstance(caught.value.__cause__, redis.ResponseError)
    results = pipelined(client, [("SET", "k", "v"), ("INCR", "k"), ("GET", "k")])
    assert results[0] is True and results[2] == b"v"
    assert isinstance(results[1], CommandRefused) and "not an integer" in str(results[1])
    client.close()


def test_refused_connection_is_unreachable() -> None:
    (port,) = free_ports(1, "127.0.0.1")
    client = make_connect(client_name="headroom-test", connect_timeout=2.0)("127.0.0.1", port)
    with pytest.raises(ClusterUnreachable) as caught:
        cmd(client, "PING")
    assert not isinstance(caught.value, (NodeTimeout, AuthRefused))
    assert isinstance(caught.value.__cause__, redis.ConnectionError)
    assert "\n" not in str(caught.value) and str(port) in str(caught.value)


def test_silent_node_is_a_timeout(silent_node: tuple[str, int]) -> None:
    host, port = silent_node
    client = make_connect(client_name="headroom-test", socket_timeout=0.3)(host, port)
    with pytest.raises(NodeTimeout):
        cmd(client, "PING")
    with pytest.raises(NodeTimeout):
        pipelined(client, [("PING",)])
    client.close()


def test_wrong_password_is_auth_refused_and_never_shown(plain_redis: RedisNode) -> None:
    secret = "s3cret-Never-Shown"
    plain_redis.client().config_set("requirepass", "right-one")
    client = make_connect(RedisAuth(password=secret), client_name="headroom-test")(
        plain_redis.host, plain_redis.port
    )
    with pytest.raises(AuthRefused) as caught:
        cmd(client, "PING")
    err = caught.value
    assert isinstance(err, ClusterUnreachable) and isinstance(err, HeadroomError)
    assert secret not in str(err) and "\n" not in str(err)
    client.close()
