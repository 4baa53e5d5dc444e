"""The demo's chart: demand, forecast, ready capacity and actions over the simulated day."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from headroom.policies.calendar import DemandEvent  # noqa: E402
from headroom.policies.policy import Target  # noqa: E402

if TYPE_CHECKING:
    from headroom.controller.demo_report import DemoReport


def render_chart(
    report: DemoReport,
    event: DemandEvent,
    target: Target,
    tz: str,
    path: Path,
    utilization: float = 1.0,
) -> Path:
    """Write a PNG of the run: what clients asked, what was measured, forecast, capacity
    (at ``utilization``, the policy's target utilisation, which decisions use)."""
    zone = ZoneInfo(tz)
    rows = report.timeline
    when = [datetime.fromtimestamp(s.t, zone) for s in rows]
    per = target.capacity_per_unit
    fig, (ax, ax_units) = plt.subplots(
        2, 1, figsize=(11, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.axvspan(
        datetime.fromtimestamp(event.window_start, zone),
        datetime.fromtimestamp(event.end, zone),
        color="#f4d35e",
        alpha=0.25,
        label=f"{event.name} (ramp..end)",
    )
    ax.plot(when, [s.wanted_qps for s in rows], color="#999999", lw=1, label="demand (generated)")
    ax.plot(when, [s.measured_qps for s in rows], color="#1f77b4", lw=1.4, label="QPS (Redis INFO)")
    ax.plot(
        when, [s.forecast_p90 for s in rows], color="#ff7f0e", lw=1.2, ls="--", label="forecast p90"
    )
    # Decisions keep demand under the ready capacity at the target utilisation: that is the
    # line to read against the forecast. Above the 100 % line requests fall short (the
    # underprovisioned minutes in the title).
    util = utilization
    ax.step(
        when,
        [s.capacity_units * per * util for s in rows],
        where="post",
        color="#2ca02c",
        lw=2,
        label=f"Headroom: ready capacity at {util:.0%} (what decisions use)",
    )
    ax.step(
        when,
        [s.capacity_units * per for s in rows],
        where="post",
        color="#2ca02c",
        lw=0.9,
        ls=":",
        label="Headroom: ready capacity at 100 % (short above it)",
    )
    hpa = report.summary.get("reactive_hpa_ready") or []
    if hpa:
        # The replayed HPA's steps, held to the end of the run.
        hpa_when = [datetime.fromtimestamp(at, zone) for at, _ in hpa] + [when[-1]]
        hpa_units = [units for _, units in hpa] + [hpa[-1][1]]
        ax.step(
            hpa_when,
            [u * per * util for u in hpa_units],
            where="post",
            color="#d62728",
            lw=1.4,
            ls="--",
            label=f"reactive HPA (replayed): ready capacity at {util:.0%}",
        )
    for action in report.summary["actions"]:
        at = datetime.fromtimestamp(action["at"], zone)
        ax.axvline(at, color="#9467bd", lw=0.8, alpha=0.7)
        ax.annotate(
            f"{action['from']}→{action['to']}",
            (
                mdates.date2num(at),  # type: ignore[no-untyped-call]
                ax.get_ylim()[1] * 0.92,
            ),
            fontsize=8,
            color="#9467bd",
            rotation=90,
            va="top",
        )
    ax.set_ylabel("queries per second")
    ax.legend(loc="upper left", fontsize=7.5)
    summary = report.summary
    ax.set_title(
        f"headroom demo — keys lost {summary['keys_lost']}, underprovisioned "
        f"{summary['underprovisioned_minutes']} min (reactive HPA: "
        f"{summary['reactive_hpa_underprovisioned_minutes']} min)",
        fontsize=10,
    )
    ax_units.step(when, [s.desired for s in rows], where="post", color="#9467bd", label="desired")
    ax_units.step(
        when,
        np.round([s.capacity_units for s in rows], 2),
        where="post",
        color="#2ca02c",
        label="ready",
    )
    if hpa:
        ax_units.step(
            hpa_when, hpa_units, where="post", color="#d62728", ls="--", label="reactive HPA ready"
        )
    ax_units.set_ylabel("masters")
    ax_units.legend(loc="upper left", fontsize=8)
    ax_units.xaxis.set_major_formatter(
        mdates.DateFormatter("%H:%M", tz=zone)  # type: ignore[no-untyped-call]
    )
    ax_units.set_xlabel(f"simulated time ({tz})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
