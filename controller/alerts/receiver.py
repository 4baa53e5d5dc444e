"""A small HTTP server for JSON hooks, and the receiver of Headroom's own webhooks.

:class:`HookServer` serves ``POST`` routes on a thread (loopback unless told otherwise):
each route gets the headers and the raw body (at most ``max_body`` bytes, read only when
``Content-Length`` says it fits, and only after the route's ``authorize`` check, if it has
one, passed on the headers alone) and returns a status and a JSON answer. Connections are
bounded in number and time (``controller/httpserve.py``). The inbound
Alertmanager receiver (:mod:`.inbound`) runs on it, and so does
:class:`WebhookCollector`, which verifies Headroom's signed webhooks and keeps the alerts
(``headroom demo`` starts one as its stand-in for on-call, and shows what it received).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from headroom.controller.alerts.webhook import verify_signature
from headroom.controller.httpserve import MAX_CONNECTIONS, BoundedHandler, BoundedHTTPServer

Route = Callable[[Mapping[str, str], bytes], tuple[int, dict[str, Any]]]
Authorize = Callable[[Mapping[str, str]], tuple[int, dict[str, Any]] | None]
"""``authorize(headers)``: None to go on and read the body, else the answer to send."""


class HookServer:
    """``POST path`` -> ``route(headers, body) -> (status, json)``, on its own thread."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        host: str = "127.0.0.1",
        port: int = 0,
        max_body: int = 256 * 1024,
        authorize: Mapping[str, Authorize] | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.routes = dict(routes)
        self.authorize = dict(authorize or {})
        self.max_body = max_body
        server = self

        class Handler(BoundedHandler):
            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0]
                route = server.routes.get(path)
                if route is None:
                    self._answer(404, {"error": f"no hook at {path[:100]}"})
                    return
                check = server.authorize.get(path)
                refused = check(dict(self.headers.items())) if check is not None else None
                if refused is not None:  # before a byte of the body is read
                    self.close_connection = True
                    self._answer(*refused)
                    return
                try:
                    length = int(self.headers.get("Content-Length") or "")
                except ValueError:
                    self._answer(411, {"error": "Content-Length is required"})
                    return
                if length < 0 or length > server.max_body:
                    self.close_connection = True
                    self._answer(413, {"error": f"body over {server.max_body} bytes"})
                    return
                body = self.rfile.read(length)
                try:
                    status, answer = route(dict(self.headers.items()), body)
                except Exception as err:  # noqa: BLE001 - a bug answers 500, never kills the server
                    status, answer = 500, {"error": f"internal error ({type(err).__name__})"}
                self._answer(status, answer)

            def do_GET(self) -> None:
                self._answer(405, {"error": "use POST"})

            do_PUT = do_DELETE = do_PATCH = do_GET

            def _answer(self, status: int, doc: dict[str, Any]) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = BoundedHTTPServer((host, port), Handler, max_connections)
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="hook-server", daemon=True
        )
        self._thread.start()

    def url(self, path: str = "") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class WebhookCollector:
    """Receives Headroom's webhooks at ``/alerts``, checks each signature, keeps the alerts;
    a request that fails the check is answered 401 and kept out."""

    PATH = "/alerts"

    def __init__(self, secret: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self._secret = secret
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self.alerts: list[dict[str, Any]] = []  # each verified alert's JSON, in arrival order
        self.rejected = 0
        self.duplicates = 0
        self.server = HookServer({self.PATH: self._receive}, host, port)

    @property
    def url(self) -> str:
        return self.server.url(self.PATH)

    def _receive(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        problem = verify_signature(self._secret, headers, body)
        if problem is not None:
            with self._lock:
                self.rejected += 1
            return 401, {"error": problem}
        delivery = {k.lower(): v for k, v in headers.items()}.get("x-headroom-delivery", "")
        doc = json.loads(body)
        with self._lock:
            if delivery in self._seen:  # a retry whose first answer was lost
                self.duplicates += 1
                return 200, {"ok": True, "duplicate": True}
            self._seen.add(delivery)
            self.alerts.extend(doc.get("alerts") or [])
        return 200, {"ok": True}

    def stop(self) -> None:
        self.server.stop()
