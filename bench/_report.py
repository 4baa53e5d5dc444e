"""Writes one benchmark's section of docs/BENCHMARKS.md, leaving the other sections alone.

Each benchmark owns the text between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``;
running it again replaces only that block, so benchmarks can be rerun one at a time.
"""

from __future__ import annotations

import platform
import re
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS.md"
HEADER = """# Benchmarks

Every figure here is written by a script in `bench/` (`make bench` runs them all) and
compares Headroom with a peer measured in the same run on the same machine.
"""


def machine() -> str:
    """A short description of where the numbers were measured."""
    return f"{platform.machine()}, Python {platform.python_version()}, {platform.system()}"


def write_section(name: str, title: str, body: str) -> Path:
    """Replace (or append) the block for benchmark ``name`` in docs/BENCHMARKS.md."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"_Measured {stamp} by `bench/{name}.py` on {machine()}._\n\n{body.strip()}\n"
        f"<!-- /bench:{name} -->"
    )
    text = DOC.read_text() if DOC.exists() else HEADER
    pattern = re.compile(
        rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S
    )
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + block + "\n"
    )
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
    return DOC
