"""mypy over the package's own folders, each file under the module name it is installed as.

``headroom.policies`` is ``policies/`` (pyproject.toml's ``[tool.setuptools.package-dir]``),
but mypy finds a module only in a folder of that name and cannot follow the editable
install's import finder. So this hands mypy every file of the mapped folders with its
module name, plus the paths given (``make lint`` passes tests/, bench/ and this file), in
one run with pyproject.toml's ``[tool.mypy]`` settings. Errors name the real files.

    .venv/bin/python .ci/typecheck.py tests bench .ci/typecheck.py
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

from mypy import build
from mypy.errors import CompileError
from mypy.main import process_options
from mypy.modulefinder import BuildSource

ROOT = Path(__file__).resolve().parents[1]


def package_sources(root: Path = ROOT) -> list[BuildSource]:
    """Every ``.py`` file of each mapped folder, named as the package maps it
    (``policies/forecast/__init__.py`` is ``headroom.policies.forecast``)."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    mapping: dict[str, str] = pyproject["tool"]["setuptools"]["package-dir"]
    sources = []
    for package, folder in sorted(mapping.items()):
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            module = ".".join((package, *parts))
            sources.append(BuildSource(os.path.relpath(path), module))
    return sources


def main(argv: list[str]) -> int:
    given, options = process_options(argv)
    sources = package_sources() + given
    messages: list[str] = []

    def show(_file: str | None, new: list[str], _serious: bool) -> None:
        messages.extend(new)
        for line in new:
            print(line, flush=True)

    try:
        build.build(sources, options, flush_errors=show)
    except CompileError as e:  # a blocking error (a syntax error): shown unless show() did
        if not messages:
            print("\n".join(e.messages))
        return 2
    errors = [m for m in messages if ": error:" in m]
    if errors:
        files = len({m.split(":", 1)[0] for m in errors})
        print(f"Found {len(errors)} errors in {files} files ({len(sources)} source files)")
        return 1
    print(f"Success: no issues found in {len(sources)} source files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
