"""`headroom calendar`: validate and list demand calendars (YAML, ICS, DemandEvents).

Thin over ``headroom.policies.calendars.load_calendar``, the parser the engine,
the simulator and the operator use.
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from headroom.cli._common import (
    EXIT_INPUT,
    DryRunOpt,
    JsonOpt,
    console,
    count,
    errors_to_exit,
    fail,
    print_json,
)
from headroom.cli._kube import Cluster, cluster_command
from headroom.controller.files import CALENDAR_MAX_BYTES, read_bounded
from headroom.policies.calendar import Calendar, DemandEvent
from headroom.policies.calendars import (
    YEAR,
    event_to_resource,
    load_calendar,
    parse_time,
)
from headroom.policies.errors import CalendarError
from headroom.policies.text import duration_text, format_qps, zone

app = typer.Typer(
    help="Validate, list, export and import demand calendars (YAML or ICS).",
    no_args_is_help=True,
)

FileArg = Annotated[
    Path, typer.Argument(help="Calendar file: .yaml/.yml (events or DemandEvents) or .ics.")
]
# The window of events a command takes (list: all by default; import: 60 days back to a
# year ahead).
FromOpt = Annotated[
    str | None, typer.Option("--from", help="Only events ending after this time (ISO-8601).")
]
ToOpt = Annotated[
    str | None, typer.Option("--to", help="Only events starting before this time (ISO-8601).")
]


def read_calendar(
    path: Path,
    *,
    window: tuple[float, float] | None = None,
    default_tz: str | None = None,
) -> Calendar:
    """Read and parse a calendar file (shared by the engine commands)."""
    data = read_bounded(path, CALENDAR_MAX_BYTES, CalendarError, "calendar")
    return load_calendar(data, str(path), window=window, default_tz=default_tz)


def _time_option(value: str | None, option: str, tz: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_time(value, tz)
    except ValueError as err:
        fail(f"{option}: {err}", EXIT_INPUT)


def _expectation(event: DemandEvent) -> str:
    exp = event.expectation
    if exp is None:
        return "learn"
    parts = []
    if exp.multiplier is not None:
        parts.append(f"x{exp.multiplier:g}")
    if exp.peak_qps is not None:
        parts.append(f"peak {format_qps(exp.peak_qps)} QPS")
    return ", ".join(parts)


def _ramp(seconds: float) -> str:
    return duration_text(seconds) if seconds else "-"


def _pairs(mapping: Any) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(mapping.items())) or "-"


def event_json(event: DemandEvent, shown_tz: str | None = None) -> dict[str, Any]:
    """An event for ``--json`` (times in ``shown_tz``, else in the event's own zone)."""
    tz = shown_tz or event.tz
    return {
        "name": event.name,
        "kind": str(event.kind),
        "start": describe_iso(event.start, tz),
        "end": describe_iso(event.end, tz),
        "start_epoch": event.start,
        "end_epoch": event.end,
        "ramp_seconds": event.ramp,
        "timezone": tz,
        "labels": dict(event.labels),
        "selector": dict(event.selector),
        "expectation": None
        if event.expectation is None
        else {
            "multiplier": event.expectation.multiplier,
            "peak_qps": event.expectation.peak_qps,
        },
    }


def _local(epoch: float, tz: str, fmt: str) -> str:
    return datetime.fromtimestamp(epoch, tz=zone(tz)).strftime(fmt)


def describe_iso(epoch: float, tz: str) -> str:
    return datetime.fromtimestamp(epoch, tz=zone(tz)).isoformat()


@app.command("validate")
def validate(
    file: FileArg,
    json_out: JsonOpt = False,
) -> None:
    """Check a calendar; print "ok: N events" or one line naming the bad field (exit 2)."""
    with errors_to_exit():
        cal = read_calendar(file)
        if json_out:
            print_json({"ok": True, "file": str(file), "events": len(cal)})
        else:
            console.print(f"ok: {count(len(cal), 'event')}", highlight=False)


@app.command("list")
def list_events(
    file: FileArg,
    start: FromOpt = None,
    end: ToOpt = None,
    tz: Annotated[
        str | None,
        typer.Option("--tz", help="Show times in this zone (default: each event's own)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List the events of a calendar (recurring ICS events expanded) as a table."""
    with errors_to_exit():
        if tz is not None:
            try:
                zone(tz)
            except ValueError as err:
                fail(f"--tz: {err}", EXIT_INPUT)
        lo = _time_option(start, "--from", tz)
        hi = _time_option(end, "--to", tz)
        if lo is not None and hi is not None and hi <= lo:
            fail("--to: must be after --from", EXIT_INPUT)
        window = None
        if lo is not None or hi is not None:
            centre_lo = lo if lo is not None else (hi or 0.0) - 2 * YEAR
            centre_hi = hi if hi is not None else centre_lo + 2 * YEAR
            window = (centre_lo, centre_hi)
        cal = read_calendar(file, window=window)
        events = list(cal.events)
        if lo is not None or hi is not None:
            events = list(cal.between(lo if lo is not None else -float("inf"), hi or float("inf")))
        if json_out:
            print_json({"file": str(file), "events": [event_json(e, tz) for e in events]})
            return
        shown_tz = tz or (events[0].tz if events else "UTC")
        mixed = tz is None and len({e.tz for e in events}) > 1
        title = f"{file.name}: {count(len(events), 'event')}" + ("" if mixed else f" ({shown_tz})")
        table = Table(title=title, title_justify="left")
        for column in ("start", "end", "ramp", "kind", "name", "expect", "labels", "applies to"):
            fixed = column in ("start", "end", "ramp", "kind")
            table.add_column(column, no_wrap=fixed, overflow="fold")
        for e in events:
            zone_name = tz or e.tz
            start_s = _local(e.start, zone_name, "%Y-%m-%d %H:%M")
            same_day = _local(e.start, zone_name, "%Y%m%d") == _local(e.end, zone_name, "%Y%m%d")
            end_s = _local(e.end, zone_name, "%H:%M" if same_day else "%m-%d %H:%M")
            if mixed:
                start_s += f" {_local(e.start, zone_name, '%z')}"
            table.add_row(
                start_s,
                end_s,
                _ramp(e.ramp),
                str(e.kind),
                e.name,
                _expectation(e),
                _pairs(e.labels),
                _pairs(e.selector) if e.selector else "all",
            )
        # Piped output has no terminal width: unless $COLUMNS says one (read now, not when
        # the shared console was made), do not squeeze the table into rich's default 80.
        columns = os.environ.get("COLUMNS", "")
        width = int(columns) if columns.isdigit() else 160
        out = console if console.is_terminal else Console(width=width)
        out.print(table)


@app.command("export")
def export(
    file: FileArg,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="metadata.namespace to set.")
    ] = None,
) -> None:
    """Print the calendar as DemandEvent resources (YAML), to pipe into kubectl apply -f -."""
    with errors_to_exit():
        cal = read_calendar(file)
        docs = []
        for i, event in enumerate(cal.events):
            slug = re.sub(r"[^a-z0-9]+", "-", event.name.lower()).strip("-")[:40] or "event"
            docs.append(event_to_resource(event, f"{slug}-{i + 1}", namespace))
        typer.echo(yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True), nl=False)


@app.command("import")
@cluster_command
def import_(
    cluster: Cluster,
    file: FileArg,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="The calendar's name in the headroom.dev/calendar label (default: the file's).",
            show_default=False,
        ),
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete this calendar's events that left the file.")
    ] = False,
    dry_run: DryRunOpt = False,
    from_: FromOpt = None,
    to: ToOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create or update DemandEvents from a YAML or ICS calendar (idempotent: a second run
    changes nothing). Each event gets a stable name; --prune removes the ones this
    calendar imported earlier that are no longer in the file. Without --from/--to, the
    events from 60 days ago to a year ahead are imported."""
    from headroom.controller.demand_events import import_events
    from headroom.policies.resources import imported_resources

    now = time.time()
    start = _time_option(from_, "--from", None)
    end = _time_option(to, "--to", None)
    window = (
        start if start is not None else now - 60 * 86400.0,
        end if end is not None else now + YEAR,
    )
    cal = read_calendar(file, window=window)
    events = Calendar.of(e for e in cal.events if e.overlaps(*window))
    calendar = name or file.stem
    with cluster.connect() as (kube, ns):
        report = import_events(
            kube,
            imported_resources(events, calendar, ns),
            namespace=ns,
            calendar=calendar,
            prune=prune,
            dry_run=dry_run,
        )
    outside = len(cal) - len(events)
    if json_out:
        print_json({**report.as_json(), "outside_window": outside})
        return
    verb = "would be " if dry_run else ""
    parts = [
        f"{count(len(report.created), 'event')} {verb}created",
        f"{len(report.updated)} {verb}updated",
        f"{len(report.unchanged)} unchanged",
    ]
    if prune:
        parts.append(f"{len(report.deleted)} {verb}deleted")
    if outside:
        parts.append(f"{outside} outside --from/--to, not imported")
    typer.echo(f"calendar {calendar!r} in namespace {ns}: " + ", ".join(parts))
    for label, names in (
        ("created", report.created),
        ("updated", report.updated),
        ("deleted", report.deleted),
    ):
        for obj in names:
            typer.echo(f"  {verb}{label} demandevent/{obj}")
