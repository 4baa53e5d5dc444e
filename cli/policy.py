"""`headroom policy`: validate capacity policies (YAML, a spec or a CapacityPolicy object)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from headroom.cli._common import console, count, errors_to_exit, print_json
from headroom.controller.files import POLICY_MAX_BYTES, read_bounded
from headroom.policies.errors import PolicyError
from headroom.policies.policy import PolicySpec, Target, load_policy
from headroom.policies.text import duration_text, format_qps, unit_noun

app = typer.Typer(help="Validate capacity policies.", no_args_is_help=True)


def read_policy(path: Path) -> PolicySpec:
    """Read and validate a policy file (shared by the engine commands)."""
    data = read_bounded(path, POLICY_MAX_BYTES, PolicyError, "policy")
    return load_policy(data, str(path))


def _minutes(seconds: float) -> str:
    return duration_text(seconds, digits=3)


def _target_json(target: Target, spec: PolicySpec) -> dict[str, Any]:
    return {
        "name": target.name,
        "namespace": target.namespace,
        "kind": target.kind.value,
        "capacity_per_unit": target.capacity_per_unit,
        "min_units": target.min_units,
        "max_units": target.max_units,
        "max_step": target.max_step,
        "unit": unit_noun(target),
        "delay_one_unit_seconds": target.provisioning.delay(target.min_units, target.min_units + 1),
        "delay_min_to_max_seconds": target.provisioning.delay(target.min_units, target.max_units),
        "max_capacity_qps": target.max_units
        * target.capacity_per_unit
        * spec.slo.target_utilization
        / spec.headroom_factor,
    }


def sizing_rule(spec: PolicySpec) -> str:
    """The rule the driver runs (``policies/combined.py``), in the policy's numbers."""
    hf = f" x headroom {spec.headroom_factor:g}" if spec.headroom_factor != 1 else ""
    burst = ""
    if spec.forecast.enabled and spec.reactive.burst_window > 0:
        burst = (
            f"; away from events, if past demand bursts, a need that lasted "
            f"{_minutes(spec.reactive.burst_window)} (at most a fifth of the delay; none unless "
            "longer than the samples' spacing)"
        )
    hpa = (
        f"reactive (HPA v2: observed at {spec.reactive_utilization:.0%}, "
        f"tolerance {spec.reactive.tolerance:.0%}{burst})"
    )
    if not spec.forecast.enabled:
        predictive = ""
    else:
        q = f"p{spec.event_size_quantile * 100:g}"
        predictive = (
            f", predictive (measured x forecast shape over the lead, p50 at "
            f"{spec.forecast_utilization:.0%}), event start (the base before it x its "
            f"learned size at {q}, over the window past starts arrived in (5 min before "
            f"to 15 min after the start until starts were timed; let go once they say "
            f"the start has come with odds {q}; once demand has arrived, the measured "
            f"level x shape above it); the first 20 min at {spec.event_utilization:.0%}, "
            f"then to the "
            f"end at {min(spec.reactive_utilization, spec.forecast_utilization):.0%})"
        )
    si = spec.scale_in
    scale_in = f"; scale-in to the highest need of the last {_minutes(si.stabilization)}"
    if si.during_events != "follow":
        scale_in += f", held during events ({si.during_events})"
    if si.cooldown:
        scale_in += f", {_minutes(si.cooldown)} after events"
    return f"units = max({hpa}{predictive}){hf}{scale_in}"


@app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="Policy YAML (a spec or a CapacityPolicy).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check a policy; print a summary of its targets, or one line naming the bad field."""
    with errors_to_exit():
        spec = read_policy(file)
        summary = {
            "ok": True,
            "file": str(file),
            "name": spec.name,
            "quantile": spec.forecast.quantile,
            "sizing_rule": sizing_rule(spec),
            "target_utilization": spec.slo.target_utilization,
            "headroom_factor": spec.headroom_factor,
            "lead_time_seconds": spec.lead_time,
            "budget_unit_hours": spec.budget.max_unit_hours if spec.budget else None,
            "budget_period_seconds": spec.budget.period if spec.budget else None,
            "freeze_windows": len(spec.freeze_windows),
            "dry_run": spec.dry_run,
            "targets": [_target_json(t, spec) for t in spec.targets],
        }
        if json_out:
            print_json(summary)
            return
        budget = (
            f", budget {spec.budget.max_unit_hours:g} unit-hours/{_minutes(spec.budget.period)}"
            if spec.budget
            else ""
        )
        console.print(
            f"ok: policy {spec.name!r}: {count(len(spec.targets), 'target')}, "
            f"{sizing_rule(spec)}, lead time +{_minutes(spec.lead_time)}{budget}"
            + (", dry run" if spec.dry_run else ""),
            highlight=False,
            soft_wrap=True,
        )
        for t in spec.targets:
            info = _target_json(t, spec)
            console.print(
                f"  {t.namespace}/{t.name} ({t.kind.value}): {t.min_units}..{t.max_units} "
                f"{info['unit']}, {format_qps(t.capacity_per_unit)} QPS per unit, "
                f"max step {t.max_step or 'unlimited'}, "
                f"+1 unit ready in {_minutes(info['delay_one_unit_seconds'])}, "
                f"at most {format_qps(info['max_capacity_qps'])} QPS within the SLO",
                highlight=False,
                soft_wrap=True,
            )
