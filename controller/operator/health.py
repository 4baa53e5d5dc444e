"""The operator's one HTTP port: ``/healthz``, ``/readyz`` and ``/metrics``.

Started by ``headroom operator run`` before leader election, so a standby is live
and scrapeable too. ``/healthz`` answers while the process can serve HTTP;
``/readyz`` answers 200 once the process is a working leader or a waiting
standby (its ``ready()`` callback), 503 otherwise (starting, stopping, lost Lease).
Connections are bounded in number and time (``controller/httpserve.py``): idle
connections cannot pile up threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from headroom.controller.httpserve import BoundedHandler, BoundedHTTPServer


class HealthServer:
    """Serves health and metrics on ``host:port`` from a daemon thread."""

    def __init__(
        self,
        registry: CollectorRegistry,
        ready: Callable[[], tuple[bool, str]],
        host: str = "127.0.0.1",
        port: int = 8080,
    ) -> None:
        outer = self

        class Handler(BoundedHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._send(200, b"ok\n", "text/plain")
                elif path == "/readyz":
                    ok, why = outer.ready()
                    self._send(200 if ok else 503, f"{why}\n".encode(), "text/plain")
                elif path == "/metrics":
                    self._send(200, generate_latest(outer.registry), CONTENT_TYPE_LATEST)
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.registry = registry
        self.ready = ready
        self._server = BoundedHTTPServer((host, port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
