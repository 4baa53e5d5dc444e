"""`headroom policy`: Validate capacity policies."""

from __future__ import annotations

import typer

app = typer.Typer(help="Validate capacity policies.", no_args_is_help=True)
