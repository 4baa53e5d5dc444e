"""`headroom alerts`: check a policy's alert sinks (``test`` sends each a test alert).

Sinks come from the policy's ``alerts`` and the operator-level alerts config
(``--alerts-config`` or ``$HEADROOM_ALERTS_CONFIG``), which holds their secret
references. Output names sinks, never their URLs or secrets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from headroom.cli._common import EXIT_FAILED, JsonOpt, console, errors_to_exit, print_json
from headroom.cli.policy import read_policy
from headroom.controller.alerts.config import load_alerts_config, send_test_alerts

app = typer.Typer(help="Check alert hooks (Slack, PagerDuty, Alertmanager, webhooks).",
                  no_args_is_help=True)  # fmt: skip


@app.command("test")
def test(
    policy: Annotated[Path, typer.Option(help="Policy YAML whose alerts to test.")],
    alerts_config: Annotated[
        Path | None,
        typer.Option(
            help="Alerts config (sinks, secret references); default $HEADROOM_ALERTS_CONFIG."
        ),
    ] = None,  # fmt: skip
    json_out: JsonOpt = False,
) -> None:
    """Send a test alert (firing, then resolved) to every sink of the policy; print each result.

    Exits 1 when a sink failed, 2 for a bad policy or config.
    """
    with errors_to_exit():
        spec = read_policy(policy)
        config = load_alerts_config(alerts_config)
        results = send_test_alerts(spec, config)
    if json_out:
        print_json({"policy": spec.name, "results": [r.to_json() for r in results]})
    else:
        table = Table(title=f"Alert sinks of policy {spec.name}")
        for column in ("sink", "type", "alerts", "result", "time"):
            table.add_column(column)
        for r in results:
            outcome = "[green]delivered[/]" if r.ok else f"[red]{r.error}[/]"
            table.add_row(r.sink, r.type, ", ".join(r.on), outcome, f"{r.seconds * 1000:.0f} ms")
        console.print(table if results else f"Policy {spec.name} has no alerts configured.")
    if any(not r.ok for r in results):
        raise typer.Exit(EXIT_FAILED)
