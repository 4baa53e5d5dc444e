"""Shared CLI plumbing: one-line errors on stderr, JSON output, consoles.

Every command wraps its body in :func:`errors_to_exit` so a :class:`HeadroomError`
becomes one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

from headroom.policies.errors import HeadroomError, InputError

console = Console()
err_console = Console(stderr=True)

EXIT_INPUT = 2  # bad input: nothing was applied
EXIT_FAILED = 1  # the operation itself failed


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with ``code``."""
    first_line = message.strip().splitlines()[0] if message.strip() else "failed"
    print(f"error: {first_line}", file=sys.stderr)
    raise typer.Exit(code)


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """Turn Headroom errors into one stderr line and an exit code (2 for bad input)."""
    try:
        yield
    except InputError as err:
        fail(str(err), EXIT_INPUT)
    except HeadroomError as err:
        fail(str(err), EXIT_FAILED)


def print_json(obj: Any) -> None:
    """Machine-readable output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def save_figure(fig: Any, path: Path, dpi: int | None = None) -> None:
    """Write a matplotlib figure to ``path`` (closing it); an unwritable path is bad input."""
    import matplotlib.pyplot as plt

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    except OSError as err:
        fail(f"{path}: cannot write chart: {err.strerror or err}", EXIT_INPUT)
    finally:
        plt.close(fig)
