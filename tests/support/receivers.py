"""Real HTTP receivers on loopback that record what they are sent (stand-ins for Slack,
PagerDuty, a webhook consumer), and Debian's Alertmanager started on free ports.

A :class:`Receiver` can be created *down* (nothing listens on its port: connection
refused) and brought up later on the same port, or told to answer an error status.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.procs import free_port, free_ports, kill_group, spawn, wait_until


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records every POST (and GET); answers ``status`` (default 200) with ``reply`` and
    ``answer_headers``."""

    def __init__(self, status: int = 200, reply: bytes = b"ok", up: bool = True) -> None:
        self.port = free_port()
        self.status = status
        self.reply = reply
        self.received: list[Received] = []
        self.attempts = 0  # requests seen, whatever they were answered
        self.hold: threading.Event | None = None  # set: requests wait for it (a hung receiver)
        self.answer_headers: dict[str, str] = {}  # e.g. Location, with a 3xx status
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        if up:
            self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.attempts += 1
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                with receiver._lock:
                    status = receiver.status
                    if 200 <= status < 300:
                        receiver.received.append(
                            Received(self.path, dict(self.headers.items()), body)
                        )
                self.send_response(status)
                for name, value in receiver.answer_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(receiver.reply)))
                self.end_headers()
                self.wfile.write(receiver.reply)

            do_GET = do_POST  # noqa: N815 - http.server's name

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.json() for r in self.received]


AM = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"

AM_CONFIG = """\
route:
  receiver: hook
  group_by: [headroom_policy]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: "{webhook}"
        send_resolved: true
{auth}
"""


@dataclass
class Alertmanager:
    """Debian's Alertmanager on 127.0.0.1 (no cluster gossip), storage in ``workdir``."""

    workdir: Path
    url: str = ""
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as resp:  # noqa: S310
            return json.load(resp)

    def post(self, path: str, doc: Any) -> Any:
        request = urllib.request.Request(
            self.url + path, data=json.dumps(doc).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310
            text = resp.read()
        return json.loads(text) if text else None

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        result: list[dict[str, Any]] = self.get("/api/v2/alerts" + (f"?{query}" if query else ""))
        return result

    def stop(self) -> None:
        for proc in self.procs:
            kill_group(proc)
        self.procs.clear()


def start_alertmanager(
    workdir: Path, webhook: str = "http://127.0.0.1:9/unused", bearer: str | None = None
) -> Alertmanager:
    """Start Alertmanager with one webhook receiver (``send_resolved``) grouping by policy."""
    workdir.mkdir(parents=True, exist_ok=True)
    (port,) = free_ports(1)
    auth = ""
    if bearer is not None:
        auth = f"        http_config:\n          authorization:\n            credentials: {bearer}"
    config = workdir / "alertmanager.yml"
    config.write_text(AM_CONFIG.format(webhook=webhook, auth=auth))
    am = Alertmanager(workdir, url=f"http://127.0.0.1:{port}")
    am.procs.append(
        spawn(
            [
                AM,
                f"--config.file={config}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            workdir,
            workdir / "alertmanager.log",
        )  # fmt: skip
    )
    try:
        wait_until(lambda: am.get("/api/v2/status") is not None, 30, f"alertmanager on {am.url}")
    except BaseException:
        am.stop()
        raise
    return am
