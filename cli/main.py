"""The ``headroom`` typer app: joins one module per command group.

Importing every group costs over a second (pydantic schemas, calendars, the
Prometheus client), which every ``headroom redis ...`` call would pay. So the
console script builds an app with only the group it was asked for;
``--help`` and ``from headroom.cli.main import app`` (tests) get every group.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import version
from typing import Annotated, Any

import typer

from headroom.cli._common import OneLineErrors

# name on the command line -> (module, how it joins the app)
GROUPS: dict[str, str] = {
    "redis": "headroom.cli.redis",
    "local": "headroom.cli.local",
    "calendar": "headroom.cli.calendar",
    "policy": "headroom.cli.policy",
    "capacity": "headroom.cli.capacity",
    "operator": "headroom.cli.operator",
    "alerts": "headroom.cli.alerts",
}
COMMANDS: dict[str, str] = {
    "forecast": "headroom.cli.forecast",
    "plan": "headroom.cli.plan",
    "simulate": "headroom.cli.simulate",
    "demo": "headroom.cli.demo",
    "status": "headroom.cli.status",
    "surge": "headroom.cli.surge",
}


def build_app(only: str | None = None) -> typer.Typer:
    """The app with every group, or just the one named ``only`` (when it is known)."""
    app = typer.Typer(
        name="headroom",
        cls=OneLineErrors,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    # A callback keeps the app a group even when only one command is registered
    # (typer would otherwise make a lone command the root and misread its name).
    app.callback()(_root)
    wanted = only if only in GROUPS or only in COMMANDS else None
    for name, module in GROUPS.items():
        if wanted in (None, name):
            app.add_typer(importlib.import_module(module).app, name=name)
    registered: set[str] = set()
    for name, module in COMMANDS.items():
        if wanted in (None, name) and module not in registered:
            importlib.import_module(module).register(app)
            registered.add(module)
    return app


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"headroom {version('headroom')}")
        raise typer.Exit()


def _root(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Elastic cache and capacity autoscaler: scale Redis Clusters and pools ahead of events."""


def __getattr__(name: str) -> Any:
    if name == "app":
        return build_app()
    raise AttributeError(name)


def main() -> None:
    """Console-script entry point."""
    first = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    build_app(first)()
