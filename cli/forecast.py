"""``headroom forecast``: the policy's demand forecast (p50/p90/p99) at ``--at``, as the
operator's driver fits it, as a table, ``--json`` or a ``--chart``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import typer
from rich.table import Table

from headroom.cli._common import EXIT_INPUT, console, count, fail
from headroom.cli.chart import write_chart
from headroom.cli.engine import (
    LEVELS,
    MAX_TABLE_ROWS,
    Inputs,
    Shown,
    clock_text,
    forecast_at,
    input_command,
    select_targets,
)
from headroom.policies.calendar import DemandEvent
from headroom.policies.forecast.base import Forecast
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.text import format_qps, local_iso


def _events_in(model: HeadroomForecaster, fc: Forecast) -> list[DemandEvent]:
    seen: dict[tuple[str, float], DemandEvent] = {}
    for ev in fc.drivers:
        if ev is not None:
            seen.setdefault((ev.name, ev.start), ev)
    return list(seen.values())


def _event_json(model: HeadroomForecaster, ev: DemandEvent, tz: str) -> dict[str, Any]:
    up = model.uplift_for(ev)
    return {
        "name": ev.name,
        "kind": str(ev.kind),
        "labels": dict(ev.labels),
        "start": local_iso(ev.start, tz),
        "end": local_iso(ev.end, tz),
        "uplift_source": up.source,
        "similar_past_events": up.similar,
        "peak_multiplier": round(up.peak, 3),
    }


def _forecast_json(model: HeadroomForecaster, fc: Forecast, inputs: Inputs) -> dict[str, Any]:
    base = model.baseline
    points = []
    for i, t in enumerate(fc.t):
        drv = fc.drivers[i] if i < len(fc.drivers) else None
        point: dict[str, Any] = {"t": local_iso(float(t), inputs.tz), "mean": float(fc.mean[i])}
        for q in LEVELS:
            point[f"p{round(q * 100):d}"] = float(fc.quantiles[q][i])
        if fc.baseline is not None:
            point["baseline"] = float(fc.baseline[i])
        point["driver"] = drv.name if drv is not None else None
        points.append(point)
    return {
        "at": local_iso(inputs.at, inputs.tz),
        "horizon_seconds": inputs.horizon,
        "step_seconds": inputs.step,
        "history_samples": len(inputs.history),
        "model": {
            "level_windows_hours": list(base.windows_h),
            "weekly_shrink": round(base.profile.weekly_shrink, 3),
            "learned_events": len(model.learned_events),
        },
        "events": [_event_json(model, ev, inputs.tz) for ev in _events_in(model, fc)],
        "points": points,
    }


def _row_stride(n: int) -> int:
    return max(1, math.ceil(n / MAX_TABLE_ROWS))


def _print_forecast(model: HeadroomForecaster, fc: Forecast, inputs: Inputs) -> None:
    table = Table(title=f"Forecast from {local_iso(inputs.at, inputs.tz)} ({inputs.tz})")
    for col in ("time", "p50", "p90", "p99", "event"):
        table.add_column(col, justify="right" if col.startswith("p") else "left")
    stride = _row_stride(fc.t.size)
    for i in range(0, fc.t.size, stride):
        # Each row shows the highest value in its stretch: peaks must not fall between rows.
        sl = slice(i, i + stride)
        drivers = [d for d in fc.drivers[sl] if d is not None]
        table.add_row(
            clock_text(float(fc.t[i]), inputs.tz),
            *(format_qps(float(fc.quantiles[q][sl].max())) for q in LEVELS),
            drivers[0].name if drivers else "",
        )
    console.print(table)
    events = _events_in(model, fc)
    if events:
        ev_table = Table(title="Events in the horizon")
        for col in ("event", "kind", "start", "uplift", "from"):
            ev_table.add_column(col)
        for ev in events:
            up = model.uplift_for(ev)
            origin = {
                "learned": f"{up.similar} similar past event(s)",
                "declared+learned": f"declared, shape from {up.similar} past event(s)",
                "declared": "declared",
                "default": "policy default (no similar past event)",
            }[up.source]
            ev_table.add_row(
                ev.name, str(ev.kind), clock_text(ev.start, inputs.tz), f"x{up.peak:.2f}", origin
            )
        console.print(ev_table)
    p90 = fc.quantiles[0.9]
    k = int(np.argmax(p90))
    console.print(
        f"Peak p90 {format_qps(float(p90[k]))} QPS at {clock_text(float(fc.t[k]), inputs.tz)}; "
        f"learned from {count(len(inputs.history), 'sample')} and "
        f"{count(len(model.learned_events), 'past event')}."
    )


@input_command("Policy (forecast settings, event selector).")
def forecast_command(inputs: Inputs, shown: Shown) -> None:
    """Forecast demand (p50/p90/p99) from history and the calendar's events."""
    if shown.target is not None:  # one forecast serves every target of a policy
        if inputs.spec is None:
            fail("--target needs --policy", EXIT_INPUT)
        select_targets(inputs.spec, shown.target)
    model, fc = forecast_at(inputs)
    if shown.chart is not None:
        write_chart(shown.chart, inputs, fc, list(model.calendar.events))
    shown.report(
        lambda: _forecast_json(model, fc, inputs), lambda: _print_forecast(model, fc, inputs)
    )


def register(app: typer.Typer) -> None:
    """Add the ``forecast`` command to ``app``."""
    app.command("forecast")(forecast_command)
