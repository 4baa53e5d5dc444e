"""The INFO source's latency probe: queueing delay on the server's clock, not the prober's.

A real redis-server; the prober's own slowness is injected through the ``connect``
seam (a client that dawdles after every reply), the server's busyness with a Lua
busy loop from another connection.
"""

from __future__ import annotations

import math
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from headroom.controller.signals.redis_info import RedisInfoSource
from headroom.controller.signals.redis_samples import Probe, clock_offset, queueing_delays
from tests.support.procs import free_port, kill_group, spawn, wait_until

pytestmark = [pytest.mark.redis]

SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    proc = spawn(
        [SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        tmp_path, tmp_path / "redis.log",
    )  # fmt: skip
    try:
        client = redis.Redis(port=port)
        wait_until(lambda: bool(client.ping()), 10, "redis-server")
        client.close()
        yield port
    finally:
        kill_group(proc)


def test_queueing_delays_line_up_skewed_clocks():
    skew = 7.25  # the server's clock runs this far ahead of ours
    probes = [
        # (sent, served, received)
        Probe(0.0, 100.0, 100.0001 + skew, 100.0002),  # an idle server: 0.1 ms each way
        Probe(0.0, 101.0, 101.0300 + skew, 101.0301),  # waited 30 ms on the way in
        Probe(0.0, 102.0, 102.0002 + skew, 102.0900),  # slow only on the way back
    ]
    offset = clock_offset(probes)
    assert offset == pytest.approx(skew + 0.0001, abs=1e-9)
    delays = queueing_delays(probes, offset)
    assert delays == pytest.approx([0.0, 0.0299, 0.0001], abs=1e-6)  # a slow reply is not
    # queueing; an offset from calmer times never makes a delay negative.
    assert queueing_delays(probes, skew + 0.01) == pytest.approx([0.0, 0.0200, 0.0], abs=1e-6)
    assert math.isnan(clock_offset([])) and queueing_delays([], 0.0) == []


DAWDLE = 0.03  # seconds the slow prober idles after each reply


class _Dawdler(redis.Redis):
    """A client whose process is slow to get back to work after each reply."""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        reply = super().execute_command(*args, **options)
        time.sleep(DAWDLE)
        return reply


def test_a_slow_prober_does_not_read_as_server_latency(redis_port):
    def connect(host: str, port: int) -> redis.Redis:
        return _Dawdler(host=host, port=port, socket_timeout=2, decode_responses=True)

    source = RedisInfoSource(f"127.0.0.1:{redis_port}", connect=connect, probes=5)
    try:
        for _ in range(2):
            source.sample()
        node = source.latest().nodes[0]  # type: ignore[union-attr]
    finally:
        source.stop()
    assert node.rtt_p99_seconds >= DAWDLE  # the round trip includes the dawdling...
    # ...the queueing delay does not: most of the client's 30 ms is taken out (a bound
    # from the configured dawdle, not a latency target, so a busy machine passes too).
    assert node.p99_seconds < node.rtt_p99_seconds - 0.5 * DAWDLE


def test_a_busy_server_shows_in_the_probe(redis_port):
    source = RedisInfoSource(f"127.0.0.1:{redis_port}", probes=10, latency_window=60)
    busy = redis.Redis(port=redis_port)
    source.sample()
    idle = source.latest().nodes[0].p99_seconds  # type: ignore[union-attr]
    stop = threading.Event()

    def hog() -> None:  # ~50 ms of Lua per call keeps the event loop from the probe
        while not stop.is_set():
            busy.eval("local x = 0 for i = 1, 3000000 do x = x + i end return 1", 0)

    worker = threading.Thread(target=hog, daemon=True)
    worker.start()
    try:
        time.sleep(0.2)
        # A sample's INFO waits behind one Lua call; its TIME probes then race the hog's
        # next call, and on a quiet host all of them can win that race. The probes of
        # the window add up, so a few samples (about 1 s) are enough to see the wait.
        loaded = 0.0
        for _ in range(10):
            source.sample()
            loaded = source.latest().nodes[0].p99_seconds  # type: ignore[union-attr]
            if loaded > idle + 0.01 and loaded > 3 * idle:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(timeout=10)
        source.stop()
        busy.close()
    # Each Lua call holds the event loop ~50 ms: a probe queued behind one waits a good
    # part of that, which an idle server never makes it do (no absolute latency target).
    assert loaded > idle + 0.01 and loaded > 3 * idle
