"""`headroom local`: Run a real Redis Cluster on loopback (the embedded default)."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Run a real Redis Cluster on loopback (the embedded default).", no_args_is_help=True
)
