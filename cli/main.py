"""The ``headroom`` typer app: joins one module per command group."""

from __future__ import annotations

import typer

from headroom.cli import calendar, capacity, demo, engine, local, policy, redis, simulate

app = typer.Typer(
    name="headroom",
    help="Elastic cache and capacity autoscaler: scale Redis Clusters and pools ahead of events.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(redis.app, name="redis")
app.add_typer(local.app, name="local")
app.add_typer(calendar.app, name="calendar")
app.add_typer(policy.app, name="policy")
app.add_typer(capacity.app, name="capacity")
engine.register(app)
simulate.register(app)
demo.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
