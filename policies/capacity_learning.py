"""Per-unit capacity learned from metrics: the QPS one unit serves before p99 crosses the SLO.

Pure (numpy only). ``headroom capacity learn`` and ``bench/capacity.py`` call
:func:`learn_capacity` with pairs (QPS of one unit, p99 latency of that unit over the
same window) gathered by a signal source (Prometheus per-instance series, or the
Redis INFO source's per-master samples); the operator will call it on its history.

How, and why that way:

1. Points are binned by QPS (equal width). Each bin's latency is the *median* of its
   window p99s, so single noisy windows do not move the curve.
2. Latency may only grow with load: the bin medians are made non-decreasing with
   weighted isotonic regression (pool adjacent violators). A saturated server shows
   up as a wall (QPS stops rising, p99 climbs); the wall lands in the top bins.
3. If the fitted curve crosses the SLO, the capacity is interpolated between the
   last bin under it and the first bin over it (``method="crossing"``); windows
   inside the crossing bin that met the SLO raise it to their median QPS (a
   saturation wall is vertical, and a straight line from the bin below undershoots).
4. A saturation wall can hide from the bin medians: past saturation QPS stays flat
   while p99 spans from far under to far over the SLO at that same QPS (how many
   windows land over depends on how hard the unit was pushed, not on QPS). If the
   medians never cross but at least ``wall_fraction`` of the windows at the top QPS
   (within ``near`` of its 95th percentile, and at least ``min_bin_points`` of them)
   are over the SLO, the unit is at its limit there: the capacity is the median QPS
   of the top windows that met the SLO (``method="crossing"``, reason "saturation
   wall").
5. Otherwise, if it never crosses, the queueing shape ``1/p99 ~ a - b*qps`` (M/M/1-like) is
   fitted to the bins and solved for the SLO (``method="extrapolated"``), capped at
   twice the highest QPS seen. Extrapolation is less trustworthy: with a declared
   value, the declared value is used and the extrapolation reported as evidence.
6. With too few points or bins (``thin data``) the declared value is used. Windows
   under ``idle_fraction`` of the highest QPS seen are not evidence.

The :class:`CapacityEstimate` carries the evidence: the bins, how many points lie
near the crossing, whether the SLO was crossed at all, and a confidence word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from headroom.policies.jsonable import finite_or_none

Method = Literal["crossing", "extrapolated", "declared", "none"]
Confidence = Literal["high", "medium", "low", "none"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LatencyBin:
    """Points with ``qps_lo <= qps < qps_hi``: their count, median p99, and the monotone fit."""

    qps_lo: float
    qps_hi: float
    qps_median: float
    count: int
    p99_median: float
    p99_fitted: float


@dataclass(frozen=True)
class CapacityEstimate:
    """The QPS per unit to plan with, and why.

    ``qps_per_unit`` is what the planner should use (``None`` only when there is
    neither enough data nor a declared value); ``learned`` is what the data says
    (also when it was not used).
    """

    qps_per_unit: float | None
    method: Method
    confidence: Confidence
    learned: float | None
    declared: float | None
    slo_seconds: float
    crossed: bool
    points: int
    points_near: int
    max_observed_qps: float
    bins: tuple[LatencyBin, ...]
    reason: str

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["bins"] = [asdict(b) for b in self.bins]
        clean: dict[str, Any] = finite_or_none(doc)
        return clean


def isotonic_increasing(y: FloatArray, w: FloatArray) -> FloatArray:
    """Weighted least-squares non-decreasing fit of ``y`` (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [weighted mean, weight, length]
    for yi, wi in zip(y.tolist(), w.tolist(), strict=True):
        blocks.append([yi, wi, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, n2 = blocks.pop()
            m1, w1, n1 = blocks.pop()
            wt = w1 + w2
            blocks.append([(m1 * w1 + m2 * w2) / wt, wt, n1 + n2])
    return np.concatenate([np.full(int(n), m) for m, _, n in blocks]).astype(np.float64)


def learn_capacity(
    qps: Sequence[float] | FloatArray,
    p99_seconds: Sequence[float] | FloatArray,
    slo_seconds: float,
    declared: float | None = None,
    min_points: int = 20,
    min_bin_points: int = 3,
    bins: int | None = None,
    near: float = 0.15,
    idle_fraction: float = 0.02,
    wall_fraction: float = 0.1,
) -> CapacityEstimate:
    """Estimate one unit's QPS at the p99 SLO from ``(qps, p99)`` pairs; see the module doc."""
    if not slo_seconds > 0:
        raise ValueError(f"slo_seconds must be positive, got {slo_seconds}")
    q = np.asarray(qps, dtype=np.float64)
    lat = np.asarray(p99_seconds, dtype=np.float64)
    if q.shape != lat.shape:
        raise ValueError(f"qps{q.shape} and p99{lat.shape} must have the same length")
    ok = np.isfinite(q) & np.isfinite(lat) & (q > 0) & (lat > 0)
    if ok.any():
        # Near-idle windows (between load tests, at night) say nothing about capacity, and
        # their latency is dominated by whatever else the host is doing.
        ok &= q >= idle_fraction * float(q[ok].max())
    q, lat = q[ok], lat[ok]
    n = int(q.size)
    max_q = float(q.max()) if n else 0.0

    def fallback(
        reason: str, learned: float | None = None, fitted: tuple[LatencyBin, ...] = ()
    ) -> CapacityEstimate:
        return CapacityEstimate(
            qps_per_unit=declared,
            method="declared" if declared is not None else "none",
            confidence="none",
            learned=learned,
            declared=declared,
            slo_seconds=slo_seconds,
            crossed=False,
            points=n,
            points_near=0,
            max_observed_qps=max_q,
            bins=fitted,
            reason=reason,
        )

    if n < min_points:
        return fallback(f"thin data: {n} usable points, need {min_points}")

    n_bins = bins or int(np.clip(n // 10, 5, 30))
    edges = np.linspace(0.0, max_q * (1 + 1e-9), n_bins + 1)
    which = np.clip(np.searchsorted(edges, q, side="right") - 1, 0, n_bins - 1)
    rows: list[tuple[float, float, float, int, float]] = []
    for b in range(n_bins):
        members = which == b
        count = int(members.sum())
        if count >= min_bin_points:
            rows.append((
                float(edges[b]), float(edges[b + 1]), float(np.median(q[members])),
                count, float(np.median(lat[members])),
            ))  # fmt: skip
    if len(rows) < 3:
        return fallback(f"thin data: {len(rows)} QPS bins with >= {min_bin_points} points, need 3")
    centers = np.array([r[2] for r in rows])
    medians = np.array([r[4] for r in rows])
    weights = np.array([float(r[3]) for r in rows])
    fitted = isotonic_increasing(medians, weights)
    evidence = tuple(
        LatencyBin(lo, hi, c, cnt, med, float(f))
        for (lo, hi, c, cnt, med), f in zip(rows, fitted, strict=True)
    )

    def measured(
        learned: float, confidence: Confidence, reason: str, method: Method = "crossing"
    ) -> CapacityEstimate:
        return CapacityEstimate(
            qps_per_unit=learned,
            method=method,
            confidence=confidence,
            learned=learned,
            declared=declared,
            slo_seconds=slo_seconds,
            crossed=method == "crossing",
            points=n,
            points_near=_near(q, learned, near),
            max_observed_qps=max_q,
            bins=evidence,
            reason=reason,
        )

    over = np.nonzero(fitted > slo_seconds)[0]
    if over.size:
        i = int(over[0])
        if i == 0:
            # Even the lightest load breaks the SLO: the unit cannot meet it at all here.
            learned = float(centers[0])
            why = "p99 is over the SLO even at the lowest load seen"
            if declared is not None:
                return fallback(why + "; declared value used", learned, fitted=evidence)
            return measured(learned, "low", why)
        x0, x1, y0, y1 = centers[i - 1], centers[i], fitted[i - 1], fitted[i]
        learned = float(x0 + (slo_seconds - y0) * (x1 - x0) / (y1 - y0)) if y1 > y0 else float(x0)
        # A saturated server is a wall: QPS stops rising while p99 climbs, so the crossing
        # bin holds windows both under and over the SLO at nearly the same QPS, and a line
        # from the bin below undershoots. Windows that met the SLO inside the crossing bin
        # prove the unit served that much: take their median QPS when there are enough.
        lo, hi = rows[i][0], rows[i][1]
        served = q[(q >= lo) & (q < hi) & (lat <= slo_seconds)]
        if served.size >= min_bin_points:
            learned = max(learned, float(np.median(served)))
        near_count = _near(q, learned, near)
        below = int(np.sum((q >= learned * (1 - near)) & (q < learned)))
        above = near_count - below
        confidence: Confidence = "high" if below >= 5 and above >= 5 else "medium"
        why = f"p99 crossed the SLO between {x0:.0f} and {x1:.0f} QPS"
        return measured(learned, confidence, why)

    # Never crossed by the medians; a saturation wall at the top QPS? (module doc, step 4)
    top = q >= (1 - near) * float(np.quantile(q, 0.95))
    over_top = int(np.sum(top & (lat > slo_seconds)))
    served_top = q[top & (lat <= slo_seconds)]
    if (
        over_top >= min_bin_points
        and over_top >= wall_fraction * int(top.sum())
        and served_top.size >= min_bin_points
    ):
        learned = float(np.median(served_top))
        why = (
            f"saturation wall: p99 over the SLO in {over_top} of {int(top.sum())} windows "
            f"at the top QPS (>= {float(q[top].min()):.0f}) while QPS stayed flat"
        )
        return measured(learned, "medium", why)

    # Never crossed: extrapolate 1/p99 = a - b*qps to the SLO.
    slope, intercept = np.polyfit(centers, 1.0 / fitted, 1, w=np.sqrt(weights))
    if slope >= 0:
        return fallback(
            f"SLO never crossed and p99 does not grow with load (max seen {max_q:.0f} QPS)",
            fitted=evidence,
        )
    learned = min(float((intercept - 1.0 / slo_seconds) / -slope), 2 * max_q)
    learned = max(learned, max_q)  # the unit served max_q within the SLO: at least that much
    reason = f"SLO never crossed (max seen {max_q:.0f} QPS); queueing-curve extrapolation"
    if declared is not None:
        return fallback(reason + " reported, declared value used", learned, fitted=evidence)
    return measured(learned, "low", reason, method="extrapolated")


def _near(q: FloatArray, at: float, near: float) -> int:
    return int(np.sum((q >= at * (1 - near)) & (q <= at * (1 + near))))
