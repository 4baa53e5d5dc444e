"""`headroom capacity`: Learn per-unit capacity from metrics."""

from __future__ import annotations

import typer

app = typer.Typer(help="Learn per-unit capacity from metrics.", no_args_is_help=True)
