"""`headroom forecast`, `headroom plan`, `headroom simulate`: the policy core on history files."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the top-level engine commands to ``app``."""
