"""The chart ``headroom forecast`` and ``headroom plan`` draw: history, what came after
(never seen by the forecast), the forecast band p50/p90/p99, events shaded and the
planned capacity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from headroom.cli._common import pyplot, save_figure
from headroom.cli.engine import (
    Inputs,
)
from headroom.policies.calendar import DemandEvent
from headroom.policies.capacity import capacity_of
from headroom.policies.forecast.base import Forecast
from headroom.policies.planner.values import Plan
from headroom.policies.policy import Target
from headroom.policies.text import format_qps, local_iso, unit_noun
from headroom.policies.text import zone as zone_info


def write_chart(
    path: Path,
    inputs: Inputs,
    fc: Forecast,
    events: list[DemandEvent],
    plan: Plan | None = None,
    target: Target | None = None,
) -> None:
    import matplotlib.dates as mdates

    plt = pyplot()

    zone = zone_info(inputs.tz)

    def dates(epochs: Any) -> Any:
        # Matplotlib's date axis counts days since 1970-01-01 UTC.
        return np.asarray(epochs, dtype=np.float64) / 86400.0

    shown = inputs.history.between(inputs.at - max(inputs.horizon, 86400.0), inputs.at)
    fig, ax = plt.subplots(figsize=(11, 4.8), dpi=90)
    ax.plot(dates(shown.t), shown.v, color="0.35", lw=0.7, label="history")
    if len(inputs.later):
        ax.plot(
            dates(inputs.later.t),
            inputs.later.v,
            color="0.6",
            lw=0.5,
            label="actual (not seen by the forecast)",
        )
    ft = dates(fc.t)
    ax.fill_between(
        ft,
        fc.quantiles[0.5],
        fc.quantiles[0.99],
        color="tab:blue",
        alpha=0.15,
        label="p50-p99",
        step=None,
    )
    ax.fill_between(
        ft, fc.quantiles[0.5], fc.quantiles[0.9], color="tab:blue", alpha=0.25, label="p50-p90"
    )
    ax.plot(ft, fc.quantiles[0.5], color="tab:blue", lw=1.2, label="forecast p50")
    if fc.baseline is not None:
        ax.plot(ft, fc.baseline, color="tab:blue", lw=0.8, ls=":", label="baseline")
    lo, hi = float(shown.t[0]) if len(shown) else inputs.at, float(fc.t[-1])
    for ev in events:
        if ev.end < lo or ev.window_start > hi:
            continue
        ax.axvspan(*dates(np.asarray([ev.window_start, ev.start])), color="tab:orange", alpha=0.1)
        ax.axvspan(*dates(np.asarray([ev.start, ev.end])), color="tab:orange", alpha=0.22)
        ax.annotate(
            ev.name,
            (dates(np.asarray([ev.start]))[0], 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -12),
            textcoords="offset points",
            fontsize=8,
            color="tab:orange",
        )
    if plan is not None and target is not None:
        cap = np.asarray([capacity_of(int(u), target) for u in plan.units])
        ax.step(
            dates(plan.t),
            cap,
            where="post",
            color="tab:green",
            lw=1.4,
            label=f"ordered capacity ({target.name}, {unit_noun(target)} x "
            f"{format_qps(target.capacity_per_unit)})",
        )
        for a in plan.actions:
            ax.axvline(dates(a.at), color="tab:green", lw=0.6, ls="--")
    ax.axvline(dates(inputs.at), color="k", lw=0.8)
    ax.set_ylabel("QPS")
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=zone))  # type: ignore[no-untyped-call]
    ax.set_title(f"Headroom forecast at {local_iso(inputs.at, inputs.tz)}", fontsize=10)
    ax.legend(loc="upper left", fontsize=7)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    save_figure(fig, path)
