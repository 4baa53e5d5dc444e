"""The operator's sources reach only what the chart allows (issue 21, High 1): addresses of
Prometheus and Redis from an optional allowlist, files from allowed directories, and every
file read is bounded -- the CLI's readers too (``/dev/zero`` and oversized files)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from headroom.cli.main import app
from headroom.controller.assembly import World, build_source
from headroom.controller.files import CALENDAR_MAX_BYTES, read_bounded
from headroom.controller.signals.access import OPERATOR_DEFAULT, SourceAccess
from headroom.controller.signals.prometheus import PrometheusSource
from headroom.controller.signals.redis_info import RedisInfoSource
from headroom.policies.errors import InputError, PolicyError
from headroom.policies.policy import Metrics


def _metrics(source: str, url: str) -> Metrics:
    return Metrics.model_validate({"qps": {"source": source, "url": url}})


def test_addresses_outside_the_allowlist_are_refused() -> None:
    world = World(access=SourceAccess(addresses=("*.monitoring.svc:9090", "redis-0.shop")))
    ok = build_source(_metrics("prometheus", "http://prom.monitoring.svc:9090"), world)
    assert isinstance(ok, PrometheusSource)
    seed = build_source(_metrics("redis", "redis-0.shop:6379"), world)
    assert isinstance(seed, RedisInfoSource)
    for source, url in (
        ("prometheus", "http://prom.monitoring.svc:8080"),  # port not allowed
        ("prometheus", "http://169.254.169.254/latest/meta-data"),  # cloud metadata
        ("prometheus", "http://prom.monitoring.svc.evil.example:9090"),
        ("redis", "10.0.0.7:6379"),
    ):
        with pytest.raises(PolicyError, match=r"^policy: metrics\.qps\.url: .* is not an address"):
            build_source(_metrics(source, url), world)
    with pytest.raises(PolicyError, match=r"metrics\.qps\.url: must be an http\(s\) URL"):
        build_source(_metrics("prometheus", "file:///etc/passwd"), world)


def test_the_operator_default_refuses_files_and_allows_any_address() -> None:
    world = World(access=OPERATOR_DEFAULT)
    with pytest.raises(PolicyError, match="file sources are refused by the operator"):
        build_source(_metrics("csv", "/etc/passwd"), world)
    assert isinstance(
        build_source(_metrics("prometheus", "http://p:9090"), world), PrometheusSource
    )


def test_readers_refuse_devices_and_oversized_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^/dev/zero: is not a regular file"):
        read_bounded("/dev/zero", 1024)
    big = tmp_path / "cal.yaml"
    with big.open("wb") as f:
        f.truncate(CALENDAR_MAX_BYTES + 1)
    result = CliRunner().invoke(app, ["calendar", "validate", str(big)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {big}: is 4.0 MiB, over the 4 MiB limit of a calendar"
    for command in (["calendar", "validate", "/dev/zero"], ["policy", "validate", "/dev/zero"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, result.output
        assert "/dev/zero: is not a regular file" in result.stderr
