"""`headroom calendar`: Validate and list demand calendars (YAML or ICS)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Validate and list demand calendars (YAML or ICS).", no_args_is_help=True)
