"""The demo's measurement check: what Headroom measured against what the load generator
sent, read from the demo's timeline and actions (pure; :mod:`.demo` runs the demo and
puts this in its report, :mod:`.demo_report`).

Every scaling reason that cites an observed demand ("reactive: observed 2.93k QPS >
...") is compared with the most the generator sent during the pass before it, and the
sustained peaks of both are compared, so a demo that scaled on a demand it never had
is caught by its own report.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from headroom.controller.loop import LoopEvent
from headroom.policies.series import FloatArray

if TYPE_CHECKING:  # the demo's own sample type; demo_report.py imports this module
    from headroom.controller.demo_report import DemoSample

#: How far a demand a scaling reason cites may exceed what the load generator sent. Both
#: are rates over the same 2 s wall window, but not over the same instants (the loop's
#: 60 s bucket is a mean of the samples in it); 15% covers that skew at the demo's speed.
MEASUREMENT_TOLERANCE = 0.15
_CITED = re.compile(r"observed (\d+(?:\.\d+)?)([kMGT]?) QPS")
_SUFFIX = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def cited_demand(reason: str) -> float | None:
    """The observed demand a scaling reason cites ("reactive: observed 2.93k QPS > ..."),
    None when it cites none (a forecast, a schedule)."""
    m = _CITED.search(reason)
    return float(m[1]) * _SUFFIX[m[2]] if m else None


def _sustained(values: FloatArray, samples: int) -> FloatArray:
    """Mean of each run of ``samples`` consecutive samples (gaps left out; NaN if all are)."""
    if samples <= 1 or values.size < samples:
        return values
    ok = np.isfinite(values)
    sums = np.convolve(np.where(ok, values, 0.0), np.ones(samples), mode="valid")
    counts = np.convolve(ok.astype(float), np.ones(samples), mode="valid")
    out: FloatArray = np.full(sums.shape, np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def measurement_check(
    timeline: list[DemoSample],
    actions: list[LoopEvent],
    tick: float,
    dropped: int,
    peak_samples: int = 1,
) -> dict[str, Any]:
    """Measured against sent: the sustained peaks (means over ``peak_samples`` samples: the
    generator counts a batch when its reply arrives, Redis while it runs, so single 2 s
    windows differ by a stall either way), and each action citing an observed demand
    against the most the generator sent during the pass before it (``tick`` simulated s)."""
    sent = np.array([s.sent_qps for s in timeline])
    measured = np.array([s.measured_qps for s in timeline])
    t = np.array([s.t for s in timeline])
    claims = []
    for e in actions:
        cited = cited_demand(e.reason)
        if cited is None:
            continue
        near = sent[(t >= e.at - tick) & (t <= e.at)]
        near = near[np.isfinite(near)]
        sent_max = float(near.max()) if near.size else math.nan
        claims.append(
            {
                "at": e.at,
                "cited_qps": cited,
                "sent_max_qps": round(sent_max, 1),
                "within_tolerance": bool(cited <= sent_max * (1 + MEASUREMENT_TOLERANCE)),
            }
        )
    sent_s, measured_s = _sustained(sent, peak_samples), _sustained(measured, peak_samples)
    sent_peak = float(np.nanmax(sent_s)) if np.isfinite(sent_s).any() else math.nan
    measured_peak = float(np.nanmax(measured_s)) if np.isfinite(measured_s).any() else math.nan
    return {
        "tolerance": MEASUREMENT_TOLERANCE,
        "peak_samples": peak_samples,
        "sent_max_qps": round(float(np.nanmax(sent)), 1) if np.isfinite(sent).any() else None,
        "measured_max_qps": (
            round(float(np.nanmax(measured)), 1) if np.isfinite(measured).any() else None
        ),
        "sent_peak_qps": round(sent_peak, 1),
        "measured_peak_qps": round(measured_peak, 1),
        "peak_ratio": round(measured_peak / sent_peak, 3) if sent_peak > 0 else None,
        "gap_samples": int(np.sum(~np.isfinite(measured))),
        "zero_samples_while_sending": int(np.sum((measured == 0) & (sent > 0))),
        "demand_claims": claims,
        "dropped_ops": dropped,
    }
