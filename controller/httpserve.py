"""The one HTTP server the operator listens with: bounded threads, bounded time per socket.

``http.server.ThreadingHTTPServer`` starts a thread per connection and lets a socket wait
forever; 2,000 connections that each sent part of a body and stalled held 2,006 threads
and 460 MiB, and 1,000 idle connections to the health port held 1,000 threads. The
:class:`BoundedHTTPServer` here serves at most ``max_connections`` at once (a connection
over that is closed at once, unread) and its handlers (:class:`BoundedHandler`) time out
a socket that sends nothing for ``timeout`` seconds. The health/metrics port
(``operator/health.py``) and the hook receiver (``alerts/receiver.py``) both run on it.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_CONNECTIONS = 64  # connections served at once; more are closed unread
SOCKET_TIMEOUT = 10.0  # seconds a connection may stay silent (headers, body, keep-alive)


class BoundedHandler(BaseHTTPRequestHandler):
    """A request handler whose socket times out (``StreamRequestHandler.timeout``)."""

    timeout = SOCKET_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return  # requests may carry tokens; probes every few seconds would drown the log


class BoundedHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server with at most ``max_connections`` handler threads."""

    daemon_threads = True
    # The listen backlog: socketserver's 5 makes a burst of connections (probes, scrapes,
    # or an attacker's stalled ones) wait out SYN retransmits of 1, 2, 4 ... seconds before
    # they are even accepted and counted against ``max_connections``.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        super().__init__(address, handler)
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self.refused = 0  # connections closed because every slot was taken

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        conn.settimeout(SOCKET_TIMEOUT)  # until the handler sets its own
        return conn, addr
