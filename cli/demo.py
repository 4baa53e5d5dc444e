"""`headroom demo`: the whole job on the embedded default (local Redis Cluster, scaled clock)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""
