"""`headroom redis`: Inspect, rebalance, drain and repair any Redis Cluster."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Inspect, rebalance, drain and repair any Redis Cluster.", no_args_is_help=True
)
