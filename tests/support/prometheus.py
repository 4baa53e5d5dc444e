"""Debian's prometheus and prometheus-redis-exporter on loopback, for signal tests and benches.

One exporter serves every Redis node through its multi-target ``/scrape?target=``
endpoint; Prometheus relabels so each node is its own ``instance`` (``HOST:PORT``).
Both bind 127.0.0.1 on free ports, keep their files in a given directory, and are
killed by :meth:`PrometheusStack.stop`. Debian's exporter 1.45 takes single-dash
flags; Prometheus 2.42 takes double-dash flags and answers ``/-/ready`` before the
first samples exist, so :meth:`PrometheusStack.wait_for` polls for a series.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.procs import free_ports, kill_group, spawn, wait_until

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
REDIS_EXPORTER = shutil.which("prometheus-redis-exporter") or "/usr/bin/prometheus-redis-exporter"

CONFIG = """\
global:
  scrape_interval: {interval}
  evaluation_interval: {interval}
scrape_configs:
  - job_name: redis
    metrics_path: /scrape
    static_configs:
      - targets: [{targets}]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        regex: "redis://(.*)"
        target_label: instance
      - target_label: __address__
        replacement: "{exporter}"
"""


@dataclass
class PrometheusStack:
    """A running Prometheus (at :attr:`url`) scraping one redis exporter."""

    workdir: Path
    url: str = ""
    exporter_addr: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def query(self, promql: str, timeout: float = 5.0) -> list[dict[str, object]]:
        """Instant query straight over HTTP (independent of Headroom's source)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback
            result: list[dict[str, object]] = json.load(resp)["data"]["result"]
        return result

    def wait_for(self, promql: str, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until ``promql`` returns at least ``count`` series."""
        wait_until(lambda: len(self.query(promql)) >= count, timeout, f"prometheus: {promql}", 0.25)

    def stop_prometheus(self) -> None:
        proc = self.procs.pop("prometheus", None)
        if proc is not None:
            kill_group(proc)

    def stop(self) -> None:
        for proc in self.procs.values():
            kill_group(proc)
        self.procs.clear()


def start_prometheus(
    workdir: Path, redis_addrs: Sequence[str], scrape_interval: str = "1s"
) -> PrometheusStack:
    """Start one exporter for ``redis_addrs`` and a Prometheus scraping it every ``interval``."""
    workdir.mkdir(parents=True, exist_ok=True)
    exporter_port, prom_port = free_ports(2)
    stack = PrometheusStack(workdir)
    try:
        stack.exporter_addr = f"127.0.0.1:{exporter_port}"
        stack.procs["exporter"] = spawn(
            [REDIS_EXPORTER, "-web.listen-address", stack.exporter_addr,
             # /metrics would default to localhost:6379; point it at a node of ours.
             "-redis.addr", f"redis://{redis_addrs[0]}"],
            workdir, workdir / "exporter.log",
        )  # fmt: skip
        targets = ", ".join(f'"redis://{addr}"' for addr in redis_addrs)
        config = workdir / "prometheus.yml"
        config.write_text(
            CONFIG.format(interval=scrape_interval, targets=targets, exporter=stack.exporter_addr)
        )
        stack.url = f"http://127.0.0.1:{prom_port}"
        stack.procs["prometheus"] = spawn(
            [PROMETHEUS, f"--config.file={config}",
             f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{prom_port}",
             "--storage.tsdb.retention.time=1d", "--log.level=warn"],
            workdir, workdir / "prometheus.log",
        )  # fmt: skip

        wait_until(lambda: _http_ok(f"{stack.url}/-/ready"), 30, f"prometheus on {stack.url}", 0.2)
        wait_until(
            lambda: _http_ok(f"http://{stack.exporter_addr}/health"),
            15,
            f"redis exporter on {stack.exporter_addr}",
            0.2,
        )
    except BaseException:
        stack.stop()
        raise
    return stack


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
        return bool(resp.status == 200)
