"""`headroom forecast` and `headroom plan`: the policy core on history files."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``forecast`` and ``plan`` commands to ``app``."""
