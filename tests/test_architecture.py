"""docs/architecture.md's tree is the tree: every folder and file it names exists, and
every plug-in registry and recipe is in it."""

from __future__ import annotations

import re

from tests.support.chart import REPO_ROOT

DOC = REPO_ROOT / "docs" / "architecture.md"


def _tree() -> list[str]:
    """Every path in the ```text block's first column, under the folder it is listed in."""
    block = DOC.read_text().split("```text\n", 1)[1].split("```", 1)[0]
    out: list[str] = []
    folders: dict[int, str] = {}
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip())
        names = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        if not names or indent > 4 or names.startswith(("are ", "GENERATED")):
            continue
        base = folders.get(indent - 2, "") if indent else ""
        tokens = [t.strip("()+,") for t in names.split()]
        paths = [t for t in tokens if t.endswith(("/", ".py"))]
        out += [base + path for path in paths]
        if paths and paths[0].endswith("/"):
            folders[indent] = base + paths[0]
    return out


def test_every_path_the_tree_names_exists() -> None:
    tree = _tree()
    assert len(tree) > 40
    missing = [path for path in tree if not (REPO_ROOT / path).exists()]
    assert missing == []


def test_the_tree_shows_each_registry_and_its_recipe() -> None:
    text = DOC.read_text()
    for registry, recipe in (
        ("controller/targets/registry.py", "adding-a-target.md"),
        ("controller/signals/registry.py", "adding-a-source.md"),
        ("controller/alerts/config.py", "adding-a-sink.md"),
    ):
        assert (REPO_ROOT / registry).exists() and (REPO_ROOT / "docs" / recipe).exists()
        assert f"({recipe})" in text and f"`{registry}`" in text


def test_every_plug_in_file_is_in_the_tree() -> None:
    """A new target, source or sink file must be drawn where the reader looks for it."""
    tree = set(_tree())
    for folder in ("controller/targets", "controller/signals", "controller/alerts"):
        files = {
            f"{folder}/{p.name}"
            for p in (REPO_ROOT / folder).glob("*.py")
            if p.name not in ("__init__.py", "base.py")
        }
        assert files - tree == set(), folder
