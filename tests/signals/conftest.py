"""Fixtures of the signal tests: Debian's Prometheus + redis exporter, always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.support.prometheus import PrometheusStack, start_prometheus

PrometheusFactory = Callable[[Sequence[str]], PrometheusStack]


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[PrometheusFactory]:
    """Start Prometheus scraping the given Redis addresses every second; killed at teardown."""
    started: list[PrometheusStack] = []

    def make(redis_addrs: Sequence[str]) -> PrometheusStack:
        stack = start_prometheus(tmp_path / f"prometheus{len(started)}", redis_addrs)
        started.append(stack)
        return stack

    yield make
    for stack in started:
        stack.stop()
