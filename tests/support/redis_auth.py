"""Checks that a redis-server is secure by default, shared by the local and operator suites:
an unauthenticated client is refused with NOAUTH, protected mode is on, and the password
is on no process's command line."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import redis


def anonymous_reply(host: str, port: int, tls: ssl.SSLContext | None = None) -> bytes:
    """What a client that never sent AUTH gets for ``CLUSTER INFO`` (raw RESP2)."""
    with socket.create_connection((host, port), timeout=5) as raw:
        if tls is None:
            raw.sendall(b"CLUSTER INFO\r\n")
            return raw.recv(256)
        with tls.wrap_socket(raw) as sock:
            sock.sendall(b"CLUSTER INFO\r\n")
            return sock.recv(256)


def assert_refuses_unauthenticated(
    host: str, port: int, password: str, tls: ssl.SSLContext | None = None, **tls_kwargs: Any
) -> None:
    """NOAUTH without the password; with it, ``protected-mode`` reads ``yes``."""
    reply = anonymous_reply(host, port, tls)
    assert reply.startswith(b"-NOAUTH"), reply
    authed = redis.Redis(
        host=host,
        port=port,
        password=password,
        socket_timeout=5,
        decode_responses=True,
        **tls_kwargs,
    )
    try:
        assert authed.config_get("protected-mode") == {"protected-mode": "yes"}
        assert authed.config_get("requirepass")["requirepass"] == password
        assert authed.config_get("masterauth")["masterauth"] == password
    finally:
        authed.close()


def cmdlines_with(secret: str, pids: Iterable[int] | None = None) -> list[str]:
    """The command lines (of ``pids``, default every process) that contain ``secret``."""
    found = []
    procs = (
        [Path(f"/proc/{pid}") for pid in pids] if pids is not None else Path("/proc").glob("[0-9]*")
    )
    for proc in procs:
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if secret.encode() in cmdline:
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{proc.name}: {shown}")
    return found
