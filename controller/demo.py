"""``headroom demo``: Headroom's whole job on the embedded default, end to end.

Starts a real Redis Cluster on loopback (the local provisioner), loads a dataset,
and drives it with a cluster-aware client whose rate follows a generated day of
traffic with a scheduled livestream, on a scaled clock. The same
:class:`~headroom.controller.loop.ControlLoop` the operator runs reads Redis INFO,
forecasts from the calendar and two weeks of prior history, and resizes the
cluster through :class:`~headroom.controller.targets.redis_scaler.RedisScalerTarget`
(local provisioner + resharder); target and source are built by
:mod:`headroom.controller.assembly` from the policy, as the operator builds its own.
At the end every key is checked, the same measured traffic is replayed against a
reactive HPA with the same provisioning delay, and a JSON report plus a chart are
written. Every process it started is stopped, also on Ctrl-C.

The CLI (``headroom.cli.demo``) renders :class:`DemoSnapshot` updates as a live
dashboard; tests read the JSON report, whose summary :mod:`.demo_report` computes.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import SecretStr

from headroom.controller.alerts.notifier import AlertNotifier, SinkBinding
from headroom.controller.alerts.receiver import WebhookCollector
from headroom.controller.alerts.webhook import WebhookSink
from headroom.controller.assembly import Runtime, World, build_runtime
from headroom.controller.clock import ScaledClock
from headroom.controller.demo_report import DemoReport, DemoSample, Outcome, capacity_units
from headroom.controller.files import CALENDAR_MAX_BYTES, POLICY_MAX_BYTES, read_bounded
from headroom.controller.loadgen import LoadGenerator, LoadStats, load_dataset
from headroom.controller.loop import ControlLoop, ListSink, LoopEvent, PassReport
from headroom.controller.provisioning.local import LocalProvisioner, port_in_use
from headroom.controller.redis.connection import (
    ClusterClient,
    NodeAddr,
    RedisAuth,
    make_cluster_client,
)
from headroom.controller.redis.reports import ClusterStatus
from headroom.controller.redis.scaler import ClusterScaler
from headroom.controller.signals.base import Metric, Reading
from headroom.controller.signals.redis_info import RedisInfoSource
from headroom.controller.targets.redis_scaler import RedisScalerTarget
from headroom.policies.calendar import Calendar, DemandEvent
from headroom.policies.calendars import load_calendar
from headroom.policies.errors import InputError
from headroom.policies.policy import AlertName, PolicySpec, Target, TargetKind, load_policy
from headroom.policies.series import Series
from headroom.policies.synthetic import generate_trace

log = logging.getLogger("headroom.demo")

EXAMPLES = Path(__file__).resolve().parent.parent / "policies" / "examples"


@dataclass(frozen=True)
class DemoConfig:
    """Knobs of ``headroom demo`` (the CLI exposes them as options)."""

    out_dir: Path
    masters: int = 3
    keys: int = 200_000
    speed: float = 360.0  # simulated seconds per wall-clock second (an hour in 10 s)
    hours: float = 14.0  # simulated span, from ``start_hour`` on the event's day
    start_hour: float = 12.0
    history_days: int = 14
    base_qps: float = 600.0  # weekday mean demand before the livestream
    event_multiplier: float = 4.0  # the livestream's true peak uplift (Headroom must learn it)
    calendar_file: Path = EXAMPLES / "demo-calendar.yaml"
    policy_file: Path = EXAMPLES / "demo-policy.yaml"
    base_port: int | None = None
    tick: float = 300.0  # simulated seconds between control-loop passes
    sample_every: float = 0.25  # wall seconds between dashboard/timeline samples
    seed: int = 7
    keep_running: bool = False
    # The demo day's livestream runs this much hotter than the past ones Headroom learned
    # from (a surprise the forecast cannot know; 1.5: the forecast-miss alert's moment).
    surprise: float = 1.0

    def __post_init__(self) -> None:
        if self.masters < 1:
            raise InputError(f"--masters must be at least 1, got {self.masters}")
        if self.speed <= 0:
            raise InputError(f"--speed must be positive, got {self.speed}")
        if self.hours <= 0:
            raise InputError(f"--hours must be positive, got {self.hours}")
        if self.keys < 0:
            raise InputError(f"--keys must be 0 or more, got {self.keys}")
        if self.surprise <= 0:
            raise InputError(f"--surprise must be positive, got {self.surprise}")


@dataclass(frozen=True)
class DemoSnapshot:
    """What the dashboard shows after each sample."""

    sample: DemoSample
    phase: str
    event: DemandEvent
    tz: str
    next_action: str
    load: LoadStats
    actions: tuple[LoopEvent, ...]
    start: float
    end: float


def _free_base_port(count: int) -> int:
    """A base port with ``count`` free ports (and their cluster-bus ports) above it."""
    for base in range(17000, 29000, 50):
        if not any(port_in_use("127.0.0.1", base + i) for i in range(count)):
            return base
    raise InputError("no free port range for the demo cluster; pass --base-port")


def _sent_rate(window: deque[tuple[float, int]], ops: int, seconds: float) -> float:
    """The load generator's ops/s over the trailing ``seconds`` (NaN until two looks)."""
    mono = time.monotonic()
    window.append((mono, ops))
    while len(window) > 2 and window[1][0] <= mono - seconds:
        window.popleft()
    first_mono, first_ops = window[0]
    return (ops - first_ops) / (mono - first_mono) if mono > first_mono else math.nan


class DemoRunner:
    """Runs the demo once; ``on_update`` receives a snapshot after every sample."""

    def __init__(
        self,
        config: DemoConfig,
        on_update: Callable[[DemoSnapshot], None] | None = None,
        on_phase: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.on_update = on_update or (lambda _s: None)
        self.on_phase = on_phase or (lambda _p: None)
        self.spec = self._load_policy()
        self.target = self._demo_target()
        self.calendar = self._load_calendar()
        self.event = self.calendar.events[-1]
        self.tz = self.event.tz
        self.start, self.end = self._window()
        self.prior, self.live = self._traffic()

    # -- inputs ------------------------------------------------------------------------------

    def _load_policy(self) -> PolicySpec:
        path = self.config.policy_file
        data = read_bounded(path, POLICY_MAX_BYTES, InputError, "policy")
        return load_policy(data, str(path))

    def _demo_target(self) -> Target:
        """The policy's first target; the demo runs it on local redis-servers, read by INFO."""
        where = str(self.config.policy_file)
        target = self.spec.targets[0]
        if target.kind is not TargetKind.LOCAL_REDIS_CLUSTER:
            raise InputError(
                f"{where}: targets[0:{target.name}].kind: the demo runs a "
                f"{TargetKind.LOCAL_REDIS_CLUSTER}, not {target.kind}"
            )
        if self.spec.metrics.qps.source != "redis":
            raise InputError(
                f"{where}: metrics.qps.source: the demo reads its cluster's Redis INFO, "
                f"not {self.spec.metrics.qps.source}"
            )
        if target.min_units > self.config.masters:
            raise InputError(
                f"--masters {self.config.masters} is below the policy's minUnits {target.min_units}"
            )
        return target

    def _load_calendar(self) -> Calendar:
        path = self.config.calendar_file
        data = read_bounded(path, CALENDAR_MAX_BYTES, InputError, "calendar")
        calendar = load_calendar(data, str(path)).for_labels(self.spec.event_selector)
        if not len(calendar):
            raise InputError(f"{path}: no event selects policy {self.spec.name!r}")
        return calendar

    def _window(self) -> tuple[float, float]:
        """The simulated span: ``start_hour`` local time on the last event's day."""
        zone = ZoneInfo(self.tz)
        day = datetime.fromtimestamp(self.event.start, zone).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        start = (day + timedelta(hours=self.config.start_hour)).timestamp()
        return start, start + self.config.hours * 3600.0

    def _traffic(self) -> tuple[Series, Series]:
        """Two weeks of prior history and the live day, from one generated trace."""
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        truth = [
            cfg.event_multiplier * cfg.surprise
            if e is self.event
            else cfg.event_multiplier * rng.uniform(0.85, 1.15)
            for e in self.calendar.events
        ]
        begin = self.start - cfg.history_days * 86400.0
        days = (self.end - begin) / 86400.0
        trace = generate_trace(
            begin,
            days,
            60.0,
            cfg.base_qps,
            self.calendar.events,
            truth,
            noise=0.05,
            tz=self.tz,
            seed=cfg.seed,
        )
        return trace.before(self.start), trace.between(self.start, self.end + 60.0)

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> DemoReport:
        cfg = self.config
        cfg.out_dir.mkdir(parents=True, exist_ok=True)
        base_port = cfg.base_port or _free_base_port(self.target.max_units + 2)
        provisioner = LocalProvisioner.create(cfg.out_dir / "cluster", base_port=base_port)
        runtime: Runtime | None = None
        load: LoadGenerator | None = None
        # On-call's stand-in: a loopback receiver of the signed webhook the alerts go to.
        secret = secrets.token_hex(16)
        collector = WebhookCollector(secret)
        notifier = AlertNotifier(
            self.spec,
            [SinkBinding(WebhookSink("demo-webhook", collector.url, SecretStr(secret)),
                         frozenset(n.value for n in AlertName))],
        )  # fmt: skip
        try:
            self.on_phase(
                f"Starting a {cfg.masters}-master Redis Cluster on 127.0.0.1:{base_port}+"
            )
            auth = provisioner.auth  # a password generated for this run, never printed
            scaler = ClusterScaler(provisioner, auth=auth)
            scaler.scale_masters(cfg.masters)
            seed = self._seed(scaler.status())
            client = self._client(seed, auth)
            self.on_phase(f"Loading {cfg.keys:,} keys")
            load_dataset(client, cfg.keys)

            clock = ScaledClock(self.start, cfg.speed)
            world = World(
                local_scaler=lambda _target: scaler,
                redis_seed=seed,
                redis_auth=auth,
                stale_after=10.0,
            )
            sink = ListSink()
            runtime = build_runtime(
                self.spec,
                world,
                calendar=lambda: self.calendar,
                clock=clock,
                sink=sink,
                notifier=notifier,
                tz=self.tz,
                prior=self.prior,
                sample_every=cfg.sample_every,
                with_latency=False,  # as before the one runtime: no SLO-latency reads
            )
            loop = runtime.loop
            target = loop.targets[self.target.name]
            source = runtime.source
            # _demo_target checked the kind and the source
            assert isinstance(target, RedisScalerTarget) and isinstance(source, RedisInfoSource)
            live = self.live
            load = LoadGenerator(
                lambda: self._client(seed, auth),
                lambda: float(np.interp(clock.now(), live.t, live.v)),
                dataset_keys=cfg.keys,
            )
            load.start()
            self.on_phase("Running the day")
            timeline = self._drive(clock, loop, target, source, load, sink)
            load.stop()
            self.on_phase("Waiting for the last migration, then checking every key")
            target.wait_idle(120.0)
            verification = load.verify(client)
            final = target.cluster_status()
            notifier.close(timeout=10.0)
            outcome = Outcome(
                self.spec,
                self.target,
                self.event,
                self.tz,
                self.end,
                cfg.masters,
                cfg.tick,
                cfg.sample_every,
                cfg.speed,
            )
            summary = outcome.summary(timeline, sink.events, load.stats(), verification, final)
            summary["alerts"] = outcome.alerts(collector.alerts)
            summary["alerts_dropped"] = notifier.dropped
            report = DemoReport(cfg.out_dir, summary, timeline)
            self._write(report)
            if cfg.keep_running:
                self.on_phase(f"Cluster left running (seed {seed}); Ctrl-C to stop it")
                while True:
                    time.sleep(3600)
            return report
        finally:
            notifier.close(timeout=0.0)
            collector.stop()
            if load is not None:
                load.stop()
            if runtime is not None:
                runtime.close(timeout=0.0)
                target = runtime.loop.targets[self.target.name]
                if isinstance(target, RedisScalerTarget):
                    target.close()
            provisioner.destroy()

    @staticmethod
    def _seed(status: ClusterStatus) -> str:
        for node in status.nodes:
            if node.role == "master" and node.slots > 0:
                return node.addr
        raise InputError("the demo cluster has no master serving slots")

    @staticmethod
    def _client(seed: str, auth: RedisAuth) -> ClusterClient:
        return make_cluster_client(NodeAddr.parse(seed), auth, decode_responses=True)

    def _drive(
        self,
        clock: ScaledClock,
        loop: ControlLoop,
        target: RedisScalerTarget,
        source: RedisInfoSource,
        load: LoadGenerator,
        sink: ListSink,
    ) -> list[DemoSample]:
        timeline: list[DemoSample] = []
        report: PassReport | None = None
        next_pass = clock.now()
        sent: deque[tuple[float, int]] = deque()  # (monotonic, ops sent so far)
        while (now := clock.now()) < self.end:
            if now >= next_pass:
                report = loop.reconcile()
                next_pass += self.config.tick
            sample = self._sample(now, report, target, source, load.stats().errors)
            sample = replace(
                sample, sent_qps=_sent_rate(sent, load.stats().ops, source.rate_window)
            )
            timeline.append(sample)
            self.on_update(
                DemoSnapshot(
                    sample=sample,
                    phase="running",
                    event=self.event,
                    tz=self.tz,
                    next_action=self._next_action(report),
                    load=load.stats(),
                    actions=tuple(e for e in sink.events if e.kind != "SourceUnavailable"),
                    start=self.start,
                    end=self.end,
                )
            )
            time.sleep(self.config.sample_every)
        return timeline

    def _sample(
        self,
        now: float,
        report: PassReport | None,
        target: RedisScalerTarget,
        source: RedisInfoSource,
        client_errors: int,
    ) -> DemoSample:
        measured = source.instant(Metric.QPS)
        status = target.status()
        cluster = target.cluster_status()
        p50 = p90 = math.nan
        if report is not None and report.forecast is not None and report.forecast.t.size:
            f = report.forecast
            i = min(int(np.searchsorted(f.t, now)), f.t.size - 1)
            p50 = float(f.level(0.5)[i])
            p90 = float(f.level(self.spec.forecast.quantile)[i])
        return DemoSample(
            t=now,
            wanted_qps=float(np.interp(now, self.live.t, self.live.v)),
            measured_qps=measured.value if isinstance(measured, Reading) else math.nan,
            forecast_p50=p50,
            forecast_p90=p90,
            desired=status.desired,
            masters=cluster.masters_serving,
            capacity_units=capacity_units(cluster),
            busy=status.busy,
            detail=status.detail,
            client_errors=client_errors,
        )

    @staticmethod
    def _next_action(report: PassReport | None) -> str:
        if report is None or not report.targets or report.targets[0].decision is None:
            return "waiting for the first forecast"
        upcoming = report.targets[0].next_action(report.at)
        if upcoming is not None:
            return upcoming.reason
        return report.targets[0].decision.reason

    def _write(self, report: DemoReport) -> None:
        out = report.out_dir
        (out / "report.json").write_text(json.dumps(report.to_json(), indent=2, default=str))
        from headroom.controller.demo_chart import render_chart

        render_chart(
            report, self.event, self.target, self.tz, out / "demo.png",
            utilization=self.spec.slo.target_utilization,
        )  # fmt: skip
