"""Foresight vs the reactive HPA at the same bill, on every bench case (issue 20).

For every case (NASA-HTTP July 1995 with and without its STS-70 calendar event, the
backtest's generated and shaped traces, and several seeds of the broadened generator
``headroom.policies.synthetic.broad_scenario``) and for provisioning delays of 2, 10 and
30 minutes, runs what ``headroom simulate --frontier`` runs
(``headroom.policies.baselines.frontier.frontier``) and reports the headline: Headroom's
underprovisioned minutes at the reactive HPA's unit-hours (interpolated on Headroom's
curve, the lower convex hull of its points), as a share of the HPA's minutes (issue 20's
target at 10 min: at most 33 % on every event case, never above 100 % on any).
Charts go to ``docs/img/foresight/``.

For every case with events it also splits one run (the policy as written, both strategies
side by side, 10 min) into windows: inside events, 2 h after they end, 1 h before they
start, the rest (:func:`decompose`; usable from a script: ``from bench.foresight import
decompose``): where Headroom's extra unit-hours and both strategies' minutes went.

The policy is the product's defaults with only what a user must write (capacity per unit,
bounds); nothing here knows which trace runs. ``--record-before`` stores the numbers as
the BEFORE baseline (``bench/foresight_before.json``); a later full run writes the
``foresight`` section of docs/BENCHMARKS.md with BEFORE and AFTER side by side.

Run: ``.venv/bin/python bench/foresight.py [--case broad] [--delay 10] [--quick]
[--decompose-only] [--jobs 2] [--no-write] [--record-before]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `bench` importable
    sys.path.insert(0, str(ROOT))

from bench._report import write_section  # noqa: E402
from bench.backtest import (  # noqa: E402
    Case,
    _slug,
    nasa_cases,
    policy,
    shaped_case,
    synthetic_case,
)
from headroom.cli.simulate import write_frontier_chart  # noqa: E402
from headroom.policies.baselines import frontier as frontier_module  # noqa: E402
from headroom.policies.baselines.frontier import Frontier, frontier  # noqa: E402
from headroom.policies.baselines.suite import backtest  # noqa: E402
from headroom.policies.calendar import Calendar  # noqa: E402
from headroom.policies.policy import PolicySpec  # noqa: E402
from headroom.policies.simulate import Simulation, StrategyResult  # noqa: E402
from headroom.policies.synthetic import BroadSpec, broad_scenario  # noqa: E402

DELAYS_MIN = (2.0, 10.0, 30.0)
# Seeds 4 and 5 (quiet: 3 and 4) joined in session 16, after the rule was written: cases
# it was never developed on (a noisy seed 4 is where it is at parity with the HPA).
BROAD_SEEDS = (1, 2, 3, 4, 5)
QUIET_SEEDS = (1, 2, 3, 4)
QUIET_NOISE = (0.01, 0.03)
BROAD_DAYS = 28
OLD_DAYS = 28  # the backtest's generated and shaped traces
MEAN_UNITS = 8.0  # a broadened trace's mean demand needs about this many units at 80 %
CHARTS = ROOT / "docs" / "img" / "foresight"
BEFORE = Path(__file__).resolve().parent / "foresight_before.json"
# The reading of the numbers, written by hand (its figures are as measured then).
AFTER = Path(__file__).resolve().parent / "foresight_after.json"  # the latest other run
ANALYSIS = Path(__file__).resolve().parent / "foresight_analysis.md"
TARGET_SHARE = 0.33  # issue 20 at 10 min, on every event case
# The delay: its headline (on the CLI's grid), the charts and the decomposition.
HEADLINE_DELAY_MIN = 10.0
# The Headroom settings swept here: the cheapest of the CLI's grid and one a step dearer
# (the HPA's unit-hours lie between them and the policy as written, which is always
# added), the cheap end of the event knob (no event margin) at the same utilisations,
# plus two refinements, each aimed at the HPA's cost between the hull points around it.
# The CLI's 18-point grid on 9 cases and 3 delays does not fit the time a run gets here:
# it runs at the target's delay (10 min, the headline), this subset at 2 and 30 min;
# ``--full-grid`` sweeps it everywhere, ``--quick`` drops the middle settings and the
# refinements.
BENCH_GRID = (
    (0.6, 0.7, True),  # where a bursty trace's burst window puts the HPA's cost
    (0.6, 0.75, True),
    (0.6, 0.85, True),
    (0.6, 0.825, True),
    (0.3, 0.85, True),
    (0.6, 0.9, True),
    (0.3, 0.8, False),
    (0.3, 0.85, False),
)
QUICK_GRID = ((0.6, 0.85, True), (0.3, 0.8, False), (0.3, 0.85, False))
AFTER_HOURS = 2.0
BEFORE_HOURS = 1.0
TITLE = "Foresight: Headroom vs the reactive HPA at the same bill (issue 20)"
WINDOWS = ("inside events", "2 h after events end", "1 h before events", "the rest")


def default_policy(capacity: float, max_units: int) -> PolicySpec:
    """The product's defaults, with only what a user must write (the backtest's policy)."""
    return policy(capacity, max_units, name="foresight-bench")


def broad_case(seed: int, days: int = BROAD_DAYS, *, quiet: bool = False) -> Case:
    """A broadened generated trace; ``quiet``: per-minute noise of 1-3 % instead of 4-10 %
    (a busy site's traffic, where the reactive HPA is short almost only at events)."""
    sc = broad_scenario(seed, days, spec=BroadSpec(noise=QUIET_NOISE) if quiet else None)
    v = sc.trace.v[np.isfinite(sc.trace.v)]
    capacity = float(f"{float(v.mean()) / (0.8 * MEAN_UNITS):.2g}")
    peak_units = math.ceil(float(v.max()) / (0.8 * capacity))
    kinds: dict[str, int] = {}
    for ev in sc.calendar.events:
        kinds[str(ev.kind)] = kinds.get(str(ev.kind), 0) + 1
    overruns = [s.overrun / 60 for s in sc.shapes]
    return Case(
        name=f"broad{' quiet' if quiet else ''}, seed {seed}",
        trace=sc.trace,
        calendar=sc.calendar,
        spec=default_policy(capacity, max(2 * peak_units, 20)),
        note=(
            f"{days} days in {sc.tz}, noise {sc.noise:.0%}, base {sc.base_qps:.0f} QPS, "
            f"{capacity:g} QPS per unit "
            f"(peak needs {peak_units} units at 80 %); {len(sc.calendar)} events "
            f"({', '.join(f'{n} {k}' for k, n in kinds.items())}), none declared; true sizes "
            f"x{min(sc.sizes):.1f}-x{max(sc.sizes):.1f} (median x{np.median(sc.sizes):.1f}), "
            f"overruns {min(overruns):.0f}-{max(overruns):.0f} min; "
            f"{len(sc.shifts)} unscheduled stretch(es) at "
            f"{', '.join(f'x{s.factor:.1f}' for s in sc.shifts)} the base level"
        ),
        truth={e.name: s for e, s in zip(sc.calendar.events, sc.sizes, strict=True)},
    )


def _respec(case: Case, name: str | None = None) -> Case:
    """``case`` under the default policy (same capacity per unit and bounds)."""
    t = case.spec.targets[0]
    return replace(
        case,
        name=name or case.name,
        spec=default_policy(t.capacity_per_unit, t.max_units),
    )


@cache
def all_cases() -> tuple[Case, ...]:
    nasa = _respec(nasa_cases()[0], "NASA-HTTP Jul 1995, STS-70")
    plain = replace(
        nasa,
        name="NASA-HTTP Jul 1995, no calendar",
        calendar=Calendar(),
        note="the same trace and policy with an empty calendar (Headroom should be the HPA)",
    )
    return (
        *(broad_case(s) for s in BROAD_SEEDS),
        *(broad_case(s, quiet=True) for s in QUIET_SEEDS),
        nasa,
        plain,
        _respec(synthetic_case(1, OLD_DAYS)),
        _respec(shaped_case(1, OLD_DAYS)),
    )


def pick_cases(patterns: Sequence[str]) -> list[Case]:
    cases = list(all_cases())
    if not patterns:
        return cases
    picked = [c for c in cases if any(p.lower() in c.name.lower() for p in patterns)]
    if not picked:
        known = "; ".join(c.name for c in cases)
        raise SystemExit(f"--case: no case matches {', '.join(patterns)} (cases: {known})")
    return picked


# --- The decomposition: where the unit-hours and minutes went -----------------------


@dataclass(frozen=True)
class WindowSplit:
    """One window's share of one run: Headroom minus the HPA in unit-hours, both minutes."""

    window: str
    hours: float  # trace hours in the window
    extra_unit_hours: float  # Headroom's unit-hours minus the HPA's
    headroom_minutes: float
    hpa_minutes: float


def window_labels(t: np.ndarray, calendar: Calendar) -> np.ndarray:
    """Per sample time, the index in :data:`WINDOWS` of its window (declared times):
    inside an event beats 2 h after one, which beats 1 h before one; else the rest."""
    label = np.full(t.size, 3, dtype=np.int64)
    marks = (
        (2, lambda e: (e.start - BEFORE_HOURS * 3600, e.start)),
        (1, lambda e: (e.end, e.end + AFTER_HOURS * 3600)),
        (0, lambda e: (e.start, e.end)),
    )
    for index, span in marks:  # lowest priority first; later marks overwrite
        for ev in calendar.events:
            a, b = span(ev)
            label[(t >= a) & (t < b)] = index
    return label


def unit_seconds_per_sample(r: StrategyResult, t: np.ndarray, step: float) -> np.ndarray:
    """Ordered unit-seconds over each sample's interval ``[t_i, t_i + step)`` (exact)."""
    ct, cv = r.ordered_t, r.ordered_v.astype(np.float64)
    cum = np.concatenate(([0.0], np.cumsum(cv[:-1] * np.diff(ct))))

    def integral(x: np.ndarray) -> np.ndarray:
        i = np.clip(np.searchsorted(ct, x, side="right") - 1, 0, None)
        return np.asarray(cum[i] + cv[i] * (x - ct[i]))

    return np.asarray(integral(t + step) - integral(t))


def decompose(
    sim: Simulation, calendar: Calendar, a: str = "headroom", b: str = "reactive_hpa"
) -> list[WindowSplit]:
    """Split one simulation's ``a`` minus ``b`` unit-hours and both strategies'
    underprovisioned minutes over :data:`WINDOWS` (the rows add up to the run's totals,
    up to the last sample's interval)."""
    t = sim.trace.t
    step = sim.trace.step
    label = window_labels(t, calendar)
    ra, rb = sim.results[a], sim.results[b]
    extra = (unit_seconds_per_sample(ra, t, step) - unit_seconds_per_sample(rb, t, step)) / 3600
    out = []
    for i, name in enumerate(WINDOWS):
        m = label == i
        out.append(
            WindowSplit(
                name,
                float(m.sum()) * step / 3600,
                float(extra[m].sum()),
                float(ra.under_seconds[m].sum()) / 60,
                float(rb.under_seconds[m].sum()) / 60,
            )
        )
    return out


def decomposition(case: Case, delay_min: float = HEADLINE_DELAY_MIN) -> dict[str, Any]:
    """One backtest of ``case`` (policy as written, Headroom and the HPA) split by window."""
    sim = backtest(
        case.trace,
        case.calendar,
        case.spec,
        delay_seconds=delay_min * 60,
        names=["headroom", "reactive_hpa"],
    )
    h, hpa = sim.results["headroom"], sim.results["reactive_hpa"]
    return {
        "delay_min": delay_min,
        "headroom": {"minutes": h.underprovisioned_minutes, "unit_hours": h.unit_hours},
        "reactive_hpa": {"minutes": hpa.underprovisioned_minutes, "unit_hours": hpa.unit_hours},
        "windows": [vars(w) for w in decompose(sim, case.calendar)],
    }


# --- The frontier headline ----------------------------------------------------------


def headline(fr: Frontier) -> dict[str, Any]:
    h = fr.headline("order")
    ready = fr.headline("ready")
    return {
        "hpa_minutes": h.hpa.minutes,
        "hpa_unit_hours": h.hpa.unit_hours,
        "headroom_minutes": h.headroom.minutes,
        "headroom_unit_hours": h.headroom.unit_hours,
        "headroom_at_hpa": h.headroom_at_hpa,
        "share": h.share,
        "share_ready": ready.share,
        "hpa_at_headroom": h.hpa_at_headroom,
        "oracle_unit_hours": fr.oracle.unit_hours,
        "settings": len(fr.headroom),
        # Every Headroom setting's point, to compare two runs setting by setting (a rule
        # change judged by the points it makes cheaper at no more minutes, not only by the
        # headline, which moves with where the refinements land).
        "points": [
            [p.label, round(p.minutes, 1), round(p.unit_hours, 1)]
            for p in sorted(fr.headroom, key=lambda p: p.unit_hours)
        ],
    }


def run_frontier(
    case: Case, delay_min: float, grid: str, chart: bool, say: Callable[[str], None]
) -> dict[str, Any]:
    started = time.perf_counter()
    last = [started]

    def progress(what: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if what != "done":
            took = now - last[0]
            say(f"  {case.name} @ {delay_min:g} min: {done + 1}/{total} {what} (last {took:.0f} s)")
        last[0] = now

    kwargs: dict[str, Any] = {}
    if grid != "full":
        # A subset of the frontier's own grid (if its knobs changed, the whole grid).
        wanted = QUICK_GRID if grid == "quick" else BENCH_GRID
        settings = [s for s in frontier_module.HEADROOM_SETTINGS if s in wanted]
        kwargs = {
            "headroom_settings": settings or frontier_module.HEADROOM_SETTINGS,
            "refine": 0 if grid == "quick" else 2,
        }
        if grid == "quick":  # the HPA around the policy's 80 % only
            kwargs["hpa_utilizations"] = [
                u for u in frontier_module.HPA_UTILIZATIONS if 0.7 <= u <= 0.9
            ]
    fr = frontier(
        case.trace,
        case.calendar,
        case.spec,
        delay_seconds=delay_min * 60,
        progress=progress,
        **kwargs,
    )
    if chart:
        path = CHARTS / f"{_slug(case.name)}-{delay_min:g}min.png"
        write_frontier_chart(path, fr, f"{case.name}, delay {delay_min:g} min")
    out = headline(fr)
    out["seconds"] = time.perf_counter() - started
    out["grid"] = grid
    return out


def _job(
    name: str, delay_min: float, grid: str, chart: bool, decompose_too: bool
) -> dict[str, Any]:
    case = next(c for c in all_cases() if c.name == name)

    def say(line: str) -> None:
        print(line, flush=True)

    out: dict[str, Any] = {"case": name, "delay_min": delay_min}
    if delay_min >= 0:
        out["frontier"] = run_frontier(case, delay_min, grid, chart, say)
        fr = out["frontier"]
        share = "n/a" if fr["share"] is None else f"{fr['share']:.1%}"
        say(
            f"{name} @ {delay_min:g} min: HPA {fr['hpa_minutes']:.0f} min at "
            f"{fr['hpa_unit_hours']:,.0f} unit-hours; Headroom there "
            f"{_num(fr['headroom_at_hpa'])} min = {share} ({fr['seconds']:.0f} s)"
        )
    if decompose_too:
        out["decomposition"] = decomposition(case)
        say(f"{name}: decomposition at {HEADLINE_DELAY_MIN:g} min done")
    return out


# --- Report -------------------------------------------------------------------------

Keyed = dict[tuple[str, float], dict[str, Any]]


def _num(x: float | None, fmt: str = ",.0f") -> str:
    return "below the curve" if x is None else format(x, fmt)


def _cell(x: dict[str, Any] | None) -> str:
    if x is None:
        return "-"
    share = "" if x["share"] is None else f" ({x['share']:.0%})"
    mark = {"quick": " [quick]", "full": " [CLI grid]"}.get(x.get("grid", ""), "")
    return f"{_num(x['headroom_at_hpa'])}{share}{mark}"


def headline_table(
    runs: Sequence[tuple[str, Keyed]], cases: Sequence[Case], delays: Sequence[float]
) -> list[str]:
    """One row per case and delay; per run (BEFORE, AFTER), Headroom's minutes at the
    HPA's unit-hours (share of the HPA's) and the HPA's minutes at Headroom's."""
    head = "| case | delay | HPA min / unit-hours |"
    rule = "|---|---:|---:|"
    for label, _ in runs:
        head += (
            f" {label}: Headroom min at the HPA's unit-hours (share) "
            f"| {label}: HPA min at Headroom's unit-hours (Headroom as written) |"
        )
        rule += "---:|---:|"
    lines = [head, rule]
    for case in cases:
        for d in delays:
            found = [k.get((case.name, d), {}).get("frontier") for _, k in runs]
            ref = next((f for f in found if f is not None), None)
            if ref is None:
                continue
            hpa = f"{ref['hpa_minutes']:,.0f} / {ref['hpa_unit_hours']:,.0f}"
            row = f"| {case.name} | {d:g} min | {hpa} |"
            for f in found:
                written = (
                    "-"
                    if f is None
                    else f"{_num(f['hpa_at_headroom'])} ({f['headroom_minutes']:,.0f} min at "
                    f"{f['headroom_unit_hours']:,.0f})"
                )
                row += f" {_cell(f)} | {written} |"
            lines.append(row)
    return lines


def decomposition_table(name: str, runs: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """Per window: hours, then per run Headroom-minus-HPA unit-hours and both minutes."""
    head = "| window | hours |"
    rule = "|---|---:|"
    for label, _ in runs:
        head += f" {label}: extra unit-hours | {label}: Headroom min | {label}: HPA min |"
        rule += "---:|---:|---:|"
    lines = [f"**{name}**", "", head, rule]
    for i, w in enumerate(runs[0][1]["windows"]):
        row = f"| {w['window']} | {w['hours']:,.0f} |"
        for _, d in runs:
            x = d["windows"][i]
            row += (
                f" {x['extra_unit_hours']:+,.0f} | {x['headroom_minutes']:,.0f} "
                f"| {x['hpa_minutes']:,.0f} |"
            )
        lines.append(row)
    total = "| total | |"
    for _, d in runs:
        h, hpa = d["headroom"], d["reactive_hpa"]
        total += (
            f" {h['unit_hours'] - hpa['unit_hours']:+,.0f} ({h['unit_hours']:,.0f} vs "
            f"{hpa['unit_hours']:,.0f}) | {h['minutes']:,.0f} | {hpa['minutes']:,.0f} |"
        )
    return [*lines, total, ""]


def keyed(results: Sequence[dict[str, Any]]) -> Keyed:
    out: Keyed = {}
    for r in results:
        out.setdefault((r["case"], r["delay_min"]), {}).update(r)
    return out


def load_before() -> tuple[str, Keyed]:
    if not BEFORE.exists():
        return "", {}
    data = json.loads(BEFORE.read_text())
    return str(data.get("measured", "?")), keyed(data["results"])


def report(
    runs: Sequence[tuple[str, Keyed]], cases: Sequence[Case], delays: Sequence[float]
) -> str:
    """The section's text: the headline table and the decomposition, one column group
    per run (``[("BEFORE", ...), ("AFTER", ...)]`` or a single run)."""
    lines = [
        "Issue 20's measure: each strategy swept over its own cost knob (what "
        "`headroom simulate --frontier` runs: the HPA's target utilisation; Headroom's "
        "event quantile x target utilisation x event margin on or off, here utilisation "
        "0.7, 0.75, 0.825, 0.85 and 0.9 at event quantile 0.6, 0.85 at 0.3, 0.8 and 0.85 at "
        "0.3 with no "
        "event margin, the policy as written and two refinements near the HPA's cost; "
        "`[quick]`: 0.85 at 0.6, 0.8 and 0.85 at 0.3 with no event margin, and the policy; "
        "`[CLI grid]`: the CLI's whole grid, `--full-grid`), "
        "and Headroom's underprovisioned minutes read off its curve (the lower convex hull "
        "of its points) at the unit-hours the HPA spends at "
        "the policy's 80 % (unit-hours from the order). Target at 10 min: at most "
        f"{TARGET_SHARE:.0%} of the HPA's minutes on every event case (stretch 10 %), and "
        "never above 100 % on any case, NASA without a calendar included. The policy is the "
        "product's defaults plus capacity per unit and bounds. `below the curve`: the HPA "
        "spends less than Headroom's cheapest setting, so Headroom has no point at its cost.",
        "",
        *headline_table(runs, cases, delays),
        "",
        *([ANALYSIS.read_text().strip(), ""] if ANALYSIS.exists() else []),
        "Cases:",
        "",
        *(f"- **{c.name}**: {c.note}" for c in cases),
        "",
        "Charts (10 min, the latest run): "
        + ", ".join(
            f"[{c.name}](img/foresight/{_slug(c.name)}-10min.png)"
            for c in cases
            if (CHARTS / f"{_slug(c.name)}-10min.png").exists()
        )
        + ".",
        "",
        f"Where the unit-hours and minutes went, at {HEADLINE_DELAY_MIN:g} min with the "
        "policy as written: Headroom minus the HPA in the same run, by window of the "
        "declared times (inside an event beats 2 h after one, which beats 1 h before one):",
        "",
    ]
    for c in cases:
        found = [(label, k.get((c.name, -1.0), {}).get("decomposition")) for label, k in runs]
        have = [(label, d) for label, d in found if d is not None]
        if have:
            lines += decomposition_table(c.name, have)
    return "\n".join(lines)


def _save(path: Path, results: Sequence[dict[str, Any]], prior: dict[str, Any] | None) -> None:
    """Write ``results``; over ``prior`` (a partial run: the record as it was before it),
    each (case, delay) this run measured replaced and the others kept, with both stamps."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = list(results)
    if prior is not None:
        mine = {(r["case"], r["delay_min"]) for r in rows}
        kept = [r for r in prior["results"] if (r["case"], r["delay_min"]) not in mine]
        if kept:
            stamp = f"{prior['measured']} (rows of a later run {stamp})"
        rows = kept + rows
    path.write_text(json.dumps({"measured": stamp, "results": rows}, indent=1) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--case",
        action="append",
        default=[],
        help="only cases whose name contains this (repeatable)",
    )
    parser.add_argument(
        "--delay",
        action="append",
        type=float,
        default=[],
        help="provisioning delay in minutes (repeatable; default 2, 10, 30)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="two Headroom settings plus the policy, no refinement"
    )
    parser.add_argument("--full-grid", action="store_true", help="the CLI's whole grid")
    parser.add_argument(
        "--decompose-only",
        action="store_true",
        help="only the window decomposition (one run per case)",
    )
    parser.add_argument("--no-decompose", action="store_true")
    parser.add_argument(
        "--jobs", type=int, default=1, help="worker processes (the machine is shared: 1 or 2)"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print; write no doc, chart or JSON record"
    )
    parser.add_argument("--all-charts", action="store_true", help="charts at every delay")
    parser.add_argument(
        "--record-before",
        action="store_true",
        help=f"store the numbers as the BEFORE baseline (bench/{BEFORE.name}),"
        " saved after every job",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="write the doc after a filtered run too (AFTER where measured)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help=f"run nothing: write the section from bench/{BEFORE.name}",
    )
    args = parser.parse_args()  # fmt: skip
    cases = pick_cases(args.case)
    delays = tuple(args.delay) or DELAYS_MIN
    if args.report_only:
        stamp, before = load_before()
        runs: list[tuple[str, Keyed]] = [("BEFORE", before)]
        head = f"BEFORE: measured {stamp} (`bench/{BEFORE.name}`)."
        if AFTER.exists():
            data = json.loads(AFTER.read_text())
            runs.append(("AFTER", keyed(data["results"])))
            head += f" AFTER: measured {data['measured']} (`bench/{AFTER.name}`)."
        text = head + "\n\n" + report(runs, cases, delays)
        print(text)
        if not args.no_write:
            print(f"Wrote {write_section('foresight', TITLE, text)}")
        return 0
    grid = "quick" if args.quick else "full" if args.full_grid else "bench"

    def grid_at(d: float) -> str:
        """The grid a delay runs: the CLI's own at the target's delay (the headline is
        what ``headroom simulate --frontier`` reads), the bench's subset at the others."""
        return "full" if grid == "bench" and d == HEADLINE_DELAY_MIN else grid

    partial = bool(args.case or args.delay or args.quick or args.decompose_only)
    # The 10-minute numbers first (the target), then the others.
    jobs: list[tuple[str, float, str, bool, bool]] = []
    order = sorted(delays, key=lambda d: (d != HEADLINE_DELAY_MIN, d))
    for d in order:
        for c in cases:
            if not args.decompose_only:
                chart = (args.all_charts or d == HEADLINE_DELAY_MIN) and not args.no_write
                jobs.append((c.name, d, grid_at(d), chart, False))
            if d == order[0] and not args.no_decompose and c.calendar.events:
                jobs.append((c.name, -1.0, grid, False, True))
    print(f"{len(jobs)} jobs over {len(cases)} case(s), delays "
          f"{', '.join(f'{d:g} ({grid_at(d)} grid)' for d in delays)} min", flush=True)  # fmt: skip
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    record = BEFORE if args.record_before else AFTER
    prior = json.loads(record.read_text()) if partial and record.exists() else None
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        futures = [pool.submit(_job, *j) for j in jobs]
        for fut in as_completed(futures):
            results.append(fut.result())
            if not args.no_write:  # a partial run's rows replace only their own
                _save(record, results, prior)
    took = time.perf_counter() - started
    stamp, before = load_before()
    now = keyed(results)
    runs = [("this run", now)]
    if before and not args.record_before:
        runs = [("BEFORE", before), ("AFTER", now)]
    # The doc lists every case and delay (rows no run measured are left out).
    text = report(runs, all_cases() if args.write else cases, DELAYS_MIN if args.write else delays)
    if len(runs) == 2:
        text = f"BEFORE: the engine of {stamp} (`bench/{BEFORE.name}`); AFTER: this run.\n\n" + text
    text += f"\n\nThis run took {took:.0f} s ({len(jobs)} jobs, {max(1, args.jobs)} process(es))."
    print(text)
    if args.no_write or (partial and not (args.record_before or args.write)):
        return 0
    path = write_section(
        "foresight", "Foresight: Headroom vs the reactive HPA at the same bill", text
    )
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
