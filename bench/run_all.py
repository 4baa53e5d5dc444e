"""Runs every benchmark in bench/ in turn; each writes its own section of docs/BENCHMARKS.md."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    scripts = sorted(
        p for p in here.glob("*.py") if p.name not in {"run_all.py"} and not p.name.startswith("_")
    )
    for script in scripts:
        print(f"== {script.name}", flush=True)
        sys.argv = [str(script)]
        runpy.run_path(str(script), run_name="__main__")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
