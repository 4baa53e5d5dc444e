"""``headroom plan``: what the operator's next pass orders and plans ahead, per target, on
the same inputs (files or ``--from-cluster``), as a table, ``--json`` or a ``--chart``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from headroom.cli._common import EXIT_INPUT, console, fail
from headroom.cli.chart import write_chart
from headroom.cli.engine import (
    Inputs,
    Shown,
    clock_text,
    forecast_at,
    input_command,
    select_targets,
)
from headroom.controller import preview
from headroom.policies.bounds import MAX_UNITS
from headroom.policies.planner.values import Plan
from headroom.policies.policy import Target
from headroom.policies.text import local_iso, unit_noun


def _plan_json(plan: Plan, target: Target, current: int, inputs: Inputs) -> dict[str, Any]:
    return {
        "target": plan.target,
        "kind": target.kind.value,
        "current_units": current,
        "peak_units": int(plan.units.max()) if plan.units.size else current,
        "peak_required": int(plan.required.max()) if plan.required.size else 0,
        "capped": plan.capped,
        "notes": list(plan.notes),
        "actions": [
            {
                "at": local_iso(a.at, inputs.tz),
                "ready_by": local_iso(a.ready_by, inputs.tz),
                "from_units": a.from_units,
                "to_units": a.to_units,
                "reason": a.reason,
                "event": a.event,
                "capped": a.capped,
            }
            for a in plan.actions
        ],
        "timeline": {
            "t": [local_iso(float(t), inputs.tz) for t in plan.t],
            "required": [int(x) for x in plan.required],
            "units": [int(x) for x in plan.units],
        },
    }


@input_command("Capacity policy (YAML; or use --from-cluster).", policy_required=True)
def plan_command(
    inputs: Inputs,
    shown: Shown,
    current_units: Annotated[
        int | None,
        typer.Option(
            "--current-units",
            min=0,
            max=MAX_UNITS,
            help="Units running now (default: minUnits; --from-cluster: what the targets run).",
        ),
    ] = None,
) -> None:
    """Plan capacity per target: when to scale to how many units, and why."""
    assert inputs.spec is not None
    spec = inputs.spec
    chosen = select_targets(spec, shown.target)
    units = {
        t.name: inputs.running.get(t.name, t.min_units) if current_units is None else current_units
        for t in spec.targets
    }
    report = preview.plan_pass(
        spec, inputs.history, inputs.calendar, at=inputs.at, units=units,
        state=inputs.state, step=inputs.step,
    )  # fmt: skip
    by_name = {r.name: r for r in report.targets}
    results: list[tuple[Target, int, Plan]] = []
    for tgt in chosen:
        plan = by_name[tgt.name].plan
        if plan is None:  # only when the pass read no demand (checked above)
            fail(f"{tgt.name}: no plan: {report.conditions[0].message}", EXIT_INPUT)
        results.append((tgt, units[tgt.name], plan))
    if shown.chart is not None:
        model, fc = forecast_at(inputs)
        tgt, _, plan = results[0]
        write_chart(shown.chart, inputs, fc, list(model.calendar.events), plan, tgt)
    shown.report(
        lambda: {
            "policy": spec.name,
            "at": local_iso(inputs.at, inputs.tz),
            "horizon_seconds": inputs.horizon,
            "quantile": spec.forecast.quantile,
            "targets": [_plan_json(p, t, c, inputs) for t, c, p in results],
        },
        lambda: _print_plans(results, inputs),
    )


def _print_plans(results: list[tuple[Target, int, Plan]], inputs: Inputs) -> None:
    for tgt, current, plan in results:
        noun = unit_noun(tgt)
        table = Table(
            title=f"Plan for {plan.target} ({tgt.kind.value}): {current} {noun} now, "
            f"peak {int(plan.units.max())} {noun}" + (" [capped]" if plan.capped else "")
        )
        for col in ("order at", "ready by", "units", "reason"):
            table.add_column(col)
        for a in plan.actions:
            table.add_row(
                clock_text(a.at, inputs.tz),
                clock_text(a.ready_by, inputs.tz),
                f"{a.from_units}→{a.to_units}",
                a.reason,
            )
        if not plan.actions:
            table.add_row("-", "-", f"{current}", "no change needed in the horizon")
        console.print(table)
        for note in plan.notes:
            console.print(f"note: {note}")


def register(app: typer.Typer) -> None:
    """Add the ``plan`` command to ``app``."""
    app.command("plan")(plan_command)
