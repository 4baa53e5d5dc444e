"""Both install kinds from a fresh clone: ``headroom.policies`` is ``policies/``,
``headroom.controller`` is ``controller/``, ``headroom.cli`` is ``cli/``.

An editable install (``pip install -e .``) imports the three packages from the clone's
folders themselves (no links) and picks up a new module without a reinstall; a wheel
(``pip install .``) copies every file of the three folders into
``site-packages/headroom/``. Both run the ``headroom`` console script, from outside the
clone so that nothing is imported from the working directory.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.support import fresh_clone

PACKAGES = {"headroom.policies": "policies", "headroom.controller": "controller",
            "headroom.cli": "cli"}  # fmt: skip
PROBE = (
    "import importlib, json, sys; "
    "print(json.dumps({n: importlib.import_module(n).__file__ for n in sys.argv[1:]}))"
)


def imported_files(env: dict[str, str], *modules: str) -> dict[str, Path]:
    proc = subprocess.run(
        ["python", "-c", PROBE, *modules],
        cwd="/", env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return {name: Path(file) for name, file in json.loads(proc.stdout).items()}


def headroom_help(env: dict[str, str]) -> str:
    proc = subprocess.run(
        ["headroom", "--help"], cwd="/", env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def package_files(clone: Path) -> set[str]:
    """The three folders' tracked files, as paths under ``headroom/``."""
    listed = subprocess.run(
        ["git", "ls-files", *PACKAGES.values()], cwd=clone, capture_output=True, text=True,
        check=True,
    ).stdout.split()  # fmt: skip
    return {f"headroom/{name}" for name in listed}


def test_every_package_folder_is_a_package_of_the_wheel() -> None:
    """setuptools copies only the packages pyproject.toml lists (the editable install finds
    subpackages by itself, so only a wheel would miss a new one)."""
    pyproject = tomllib.loads((fresh_clone.REPO / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    assert pyproject["tool"]["setuptools"]["package-dir"] == PACKAGES
    folders = {
        ".".join((package, *init.parent.relative_to(fresh_clone.REPO / folder).parts))
        for package, folder in PACKAGES.items()
        for init in (fresh_clone.REPO / folder).rglob("__init__.py")
    }
    missing = sorted(folders - listed)
    assert missing == [], f"add {missing} to [tool.setuptools] packages in pyproject.toml"


@pytest.mark.slow
def test_an_editable_install_imports_each_package_from_its_folder(tmp_path: Path) -> None:
    clone = fresh_clone.clone(tmp_path / "headroom")
    env = fresh_clone.install(clone, tmp_path / "venv", editable=True)
    files = imported_files(env, *PACKAGES, "headroom.cli.main")
    for package, folder in PACKAGES.items():
        assert files[package] == clone / folder / "__init__.py"  # the folder, not a link to it
    assert files["headroom.cli.main"] == clone / "cli" / "main.py"
    # Editable: a module added to a folder after the install is importable at once.
    (clone / "policies" / "added_after_install.py").write_text("ANSWER = 42\n")
    added = imported_files(env, "headroom.policies.added_after_install")
    assert added["headroom.policies.added_after_install"] == clone / "policies" / (
        "added_after_install.py"
    )
    assert "Usage: headroom" in headroom_help(env)


@pytest.mark.slow
def test_a_wheel_install_copies_every_file_of_the_three_folders(tmp_path: Path) -> None:
    clone = fresh_clone.clone(tmp_path / "headroom")
    env = fresh_clone.install(clone, tmp_path / "venv", editable=False)
    files = imported_files(env, *PACKAGES, "headroom.controller.demo")
    site = next((tmp_path / "venv" / "lib").glob("python*/site-packages"))
    for package, folder in PACKAGES.items():
        assert files[package] == site / "headroom" / folder / "__init__.py"
    installed = {
        str(p.relative_to(site))
        for p in (site / "headroom").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    expected = package_files(clone)
    assert len(expected) > 100
    assert expected - installed == set(), "the wheel lacks these files"
    assert installed - expected == set(), "the wheel has files the folders do not"
    # The demo's example policies, calendars and trace are data of the package.
    assert (site / "headroom" / "policies" / "examples" / "demo-policy.yaml").is_file()
    assert files["headroom.controller.demo"].is_relative_to(site)
    assert "Usage: headroom" in headroom_help(env)
