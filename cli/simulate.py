"""`headroom simulate`: causal backtest of Headroom against reactive and static baselines."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to ``app``."""
