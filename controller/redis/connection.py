"""How Headroom reaches a Redis node: the one client boundary with redis-py.

This is the only module that imports ``redis`` (an import-linter contract says so).
Every part that talks to Redis (the resharder, the cluster scaler, the
provisioners, the Redis INFO signal source, the operator, the demo's load) takes a
:data:`Connect` — ``connect(host, port) -> Client`` — so the network is
passed in and AUTH/ACL/TLS are configured once, by :func:`make_connect`.
Every connection Headroom opens carries a ``headroom-*`` client name, so the
resharder can tell application clients from its own (see redis-py issue 4015).
Cluster-aware clients (the demo's load, tests) come from :func:`make_cluster_client`
with the same settings. A password never reaches a command line or a log: it comes
from a Secret, a file or an environment variable, and :class:`RedisAuth` hides it.

Commands go through :func:`cmd` and :func:`pipelined` (or any client call inside
``with translated():``), which turn redis-py's exceptions into the project's
(:mod:`headroom.policies.errors`), one line each, ``raise ... from err``:

    redis-py                        Headroom
    AuthenticationError             AuthRefused         (a ClusterUnreachable)
    TimeoutError                    NodeTimeout         (a ClusterUnreachable)
    ConnectionError (incl. LOADING) ClusterUnreachable
    ResponseError (an error reply)  CommandRefused
    any other RedisError            ClusterError
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from headroom.policies import errors

Client = redis.Redis  # a connection to one node
ClusterClient = RedisCluster  # a cluster-aware client that follows MOVED/ASK, as applications do
Connect = Callable[[str, int], Client]

OWN_PREFIX = "headroom-"  # every connection Headroom opens is named headroom-<part>
CONTROL_TIMEOUT_S = 10.0


@dataclass(frozen=True, order=True)
class NodeAddr:
    """Where a node's Redis port answers."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> NodeAddr:
        """``"host:port"`` (IPv6 hosts bracketed or not) to a :class:`NodeAddr`."""
        host, sep, port = text.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise errors.InputError(f"{text!r}: not a HOST:PORT address")
        return cls(host, int(port))


@dataclass(frozen=True)
class RedisAuth:
    """AUTH/ACL and TLS settings shared by every connection to one cluster."""

    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_ca: str | None = None
    tls_ca_data: str | None = None  # the CA as PEM text (the operator reads it from a Secret)
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_insecure: bool = False
    # Cluster nodes are reached by pod IP, which a certificate issued ahead of the pods
    # cannot name: the chain is still verified against ``tls_ca``, the name is not.
    tls_check_hostname: bool = True

    def __repr__(self) -> str:  # never print a password
        shown = "***" if self.password else None
        return f"RedisAuth(username={self.username!r}, password={shown!r}, tls={self.tls})"

    __str__ = __repr__


def generate_password() -> str:
    """A new random password (256 bits, URL-safe: no quoting needed in a redis config)."""
    return secrets.token_urlsafe(32)


def redis_auth_config(password: str) -> str:
    """redis.conf lines that make a node require ``password`` and use it toward its master
    (a config file, so the password is never on redis-server's command line)."""
    escaped = (
        password.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'requirepass "{escaped}"\nmasterauth "{escaped}"\n'


def password_from_env(name: str) -> str | None:
    """The password in environment variable ``name`` (None when unset or empty)."""
    value = os.environ.get(name, "")
    return value or None


def _client_kwargs(auth: RedisAuth) -> dict[str, Any]:
    extra: dict[str, Any] = {"username": auth.username, "password": auth.password}
    if auth.tls:
        extra |= {
            "ssl": True,
            "ssl_ca_certs": auth.tls_ca,
            "ssl_ca_data": auth.tls_ca_data,
            "ssl_certfile": auth.tls_cert,
            "ssl_keyfile": auth.tls_key,
            "ssl_cert_reqs": "none" if auth.tls_insecure else "required",
            "ssl_check_hostname": auth.tls_check_hostname and not auth.tls_insecure,
        }
    return extra


def make_connect(
    auth: RedisAuth | None = None,
    *,
    client_name: str = "headroom-resharder",
    socket_timeout: float = CONTROL_TIMEOUT_S,
    connect_timeout: float = 5.0,
    decode_responses: bool = False,
) -> Connect:
    """A :data:`Connect` for plain, AUTH/ACL and TLS nodes.

    Replies are bytes by default (keys may be binary). redis-py's own retries
    are off: a silent node would cost several timeouts per command, and
    pipelines of MIGRATE/SETSLOT must not be replayed behind the caller's back.
    """
    if not client_name.startswith(OWN_PREFIX):
        raise ValueError(f"client names must start with {OWN_PREFIX!r}: {client_name!r}")
    auth = auth or RedisAuth()

    extra = _client_kwargs(auth)

    def connect(host: str, port: int) -> Client:
        return redis.Redis(
            host=host,
            port=port,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            decode_responses=decode_responses,
            retry=Retry(NoBackoff(), 0),
            client_name=client_name,
            **extra,
        )

    return connect


def make_cluster_client(
    seed: NodeAddr,
    auth: RedisAuth | None = None,
    *,
    socket_timeout: float = CONTROL_TIMEOUT_S,
    decode_responses: bool = False,
) -> ClusterClient:
    """A cluster-aware client (redis-py's ``RedisCluster``) with the same AUTH/TLS settings
    as :func:`make_connect`, for what acts like an application (the demo's load): it has
    no ``headroom-*`` name, so the resharder treats it as one."""
    return RedisCluster(
        host=seed.host,
        port=seed.port,
        socket_timeout=socket_timeout,
        decode_responses=decode_responses,
        **_client_kwargs(auth or RedisAuth()),
    )


# -- commands and errors: the translation ---------------------------------------------------


def translate(err: redis.RedisError) -> errors.ClusterError:
    """The project's exception for a redis-py one (see the table in the module docstring)."""
    text = errors.one_line(str(err)) if str(err) else type(err).__name__
    if isinstance(err, redis.AuthenticationError):
        return errors.AuthRefused(text)
    if isinstance(err, redis.TimeoutError):
        return errors.NodeTimeout(text)
    if isinstance(err, redis.ConnectionError):
        return errors.ClusterUnreachable(text)
    if isinstance(err, redis.ResponseError):
        return errors.CommandRefused(text)
    return errors.ClusterError(text)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Run client calls in the block with redis-py's errors translated."""
    try:
        yield
    except redis.RedisError as err:
        raise translate(err) from err


def as_text(reply: Any) -> str:
    """A reply as text, whether the client decodes replies or returns bytes."""
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def cmd(client: Client, *args: Any) -> Any:
    """One command (``client.execute_command`` with a type: redis-py leaves it untyped)."""
    with translated():
        return client.execute_command(*args)  # type: ignore[no-untyped-call]


def pipelined(client: Client | ClusterClient, cmds: Iterable[Sequence[Any]]) -> list[Any]:
    """Send ``cmds`` in one round trip (a cluster client routes each by its key). A
    connection error raises; each command's error reply comes back in the list, in
    its place, as a translated exception (not raised)."""
    pipe = client.pipeline(transaction=False)
    for args in cmds:
        pipe.execute_command(*args)
    with translated():
        results = list(pipe.execute(raise_on_error=False))
    return [translate(r) if isinstance(r, redis.RedisError) else r for r in results]


def with_socket_timeout(client: Client, seconds: float) -> Client:
    """``client`` with its socket timeout (for connections it opens from now) set to
    ``seconds``: MIGRATE's sender must wait longer than MIGRATE's own timeout."""
    pool_kwargs = getattr(client.connection_pool, "connection_kwargs", None)
    if isinstance(pool_kwargs, dict):
        pool_kwargs["socket_timeout"] = seconds
    return client


def ping(client: Client, timeout: float) -> None:
    """PING the node ``client`` talks to over a fresh connection that waits at most
    ``timeout`` seconds (the client's own may wait minutes behind a MIGRATE)."""
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "socket_timeout": timeout}
    probe = redis.Redis(
        connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
    )
    try:
        with translated():
            probe.ping()
    finally:
        probe.close()
