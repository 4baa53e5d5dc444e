"""Debian's prometheus and prometheus-redis-exporter on loopback, for signal tests and benches.

One exporter serves every Redis node through its multi-target ``/scrape?target=``
endpoint; Prometheus relabels so each node is its own ``instance`` (``HOST:PORT``).
Both bind 127.0.0.1 on free ports, keep their files in a given directory, and are
killed by :meth:`PrometheusStack.stop`. Debian's exporter 1.45 takes single-dash
flags; Prometheus 2.42 takes double-dash flags and answers ``/-/ready`` before the
first samples exist, so :meth:`PrometheusStack.wait_for` polls for a series.

For targets that come and go (the pods of a RedisCluster the operator resizes), pass
``discovery=True``: the scrape targets are then read from a file-based service
discovery file that :meth:`PrometheusStack.set_targets` rewrites (Prometheus watches it),
the stand-in for Kubernetes service discovery. ``backfill`` (OpenMetrics text) is turned
into TSDB blocks by ``promtool tsdb create-blocks-from openmetrics`` before Prometheus
starts, so a test has weeks of history at once; :meth:`PrometheusStack.restart_prometheus`
starts a killed Prometheus again on the same port and data.
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
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
REDIS_EXPORTER = shutil.which("prometheus-redis-exporter") or "/usr/bin/prometheus-redis-exporter"

CONFIG = """\
global:
  scrape_interval: {interval}
  evaluation_interval: {interval}
scrape_configs:
  - job_name: redis
    metrics_path: /scrape
    {targets}
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
    argv: list[str] = field(default_factory=list)

    @property
    def targets_file(self) -> Path:
        return self.workdir / "targets.json"

    def set_targets(self, redis_addrs: Sequence[str]) -> None:
        """Replace the discovered scrape targets (``discovery=True``); written atomically."""
        doc = [{"targets": [f"redis://{addr}" for addr in sorted(redis_addrs)]}]
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.targets_file)

    def start_prometheus(self) -> None:
        """Start (or start again, after :meth:`stop_prometheus`) Prometheus itself."""
        self.procs["prometheus"] = spawn(self.argv, self.workdir, self.workdir / "prometheus.log")
        wait_until(lambda: _http_ok(f"{self.url}/-/ready"), 60, f"prometheus on {self.url}", 0.2)

    def restart_prometheus(self) -> None:
        self.stop_prometheus()
        self.start_prometheus()

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
    workdir: Path,
    redis_addrs: Sequence[str],
    scrape_interval: str = "1s",
    *,
    discovery: bool = False,
    retention: str = "1d",
    backfill: str | None = None,
    password: str | None = None,
) -> PrometheusStack:
    """Start one exporter for ``redis_addrs`` and a Prometheus scraping it every ``interval``
    (see the module docstring for ``discovery`` and ``backfill``); ``password``: the nodes'."""
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
            # Every target's password, from the environment, not the command line.
            env={"REDIS_PASSWORD": password} if password else None,
        )  # fmt: skip
        if discovery:
            stack.set_targets(redis_addrs)
            targets = f"file_sd_configs:\n      - files: [{json.dumps(str(stack.targets_file))}]"
        else:
            listed = ", ".join(f'"redis://{addr}"' for addr in redis_addrs)
            targets = f"static_configs:\n      - targets: [{listed}]"
        config = workdir / "prometheus.yml"
        config.write_text(
            CONFIG.format(interval=scrape_interval, targets=targets, exporter=stack.exporter_addr)
        )
        data = workdir / "data"
        if backfill is not None:
            _backfill(workdir, data, backfill)
        stack.url = f"http://127.0.0.1:{prom_port}"
        stack.argv = [
            PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            f"--storage.tsdb.retention.time={retention}", "--log.level=warn",
        ]  # fmt: skip
        stack.start_prometheus()
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


def _backfill(workdir: Path, data: Path, openmetrics: str) -> None:
    """Write ``openmetrics`` (ending in ``# EOF``) as TSDB blocks into ``data``."""
    source = workdir / "backfill.om"
    source.write_text(openmetrics if openmetrics.endswith("# EOF\n") else openmetrics + "# EOF\n")
    data.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"promtool backfill failed: {done.stderr.strip()[-500:]}")


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
        return bool(resp.status == 200)
