"""A fresh clone of this checkout and an offline ``pip install`` of it into a new venv.

The clone is the checkout's files as git would give them (tracked and not ignored, with
uncommitted edits), committed in a repository of its own so that ``git status`` says what
a command wrote. The venv is new and has no packages of its own (``--without-pip``: its
bundled setuptools would shadow the build backend); it borrows this venv's site-packages
for the dependencies, pip and setuptools, so the install runs with ``--no-deps
--no-build-isolation --no-index`` and what is tested is the package itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GIT = ["git", "-c", "user.name=fresh", "-c", "user.email=fresh@example.com"]


def clone(dest: Path) -> Path:
    """``dest``, holding the checkout's files (links copied as links) in a new repository."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        src, dst = REPO / name, dest / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, dst)
    subprocess.run([*GIT, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "clone"], cwd=dest, check=True)
    return dest


def install(project: Path, venv: Path, *, editable: bool) -> dict[str, str]:
    """``pip install [-e] project`` into a new ``venv``; the environment whose PATH finds
    the venv's ``python`` and ``headroom`` first."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    proc = subprocess.run(
        [*pip, "--no-index", *(["-e"] if editable else []), str(project)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    return env
