"""The docs name only what exists: the module map in docs/architecture.md lists every module of
each folder and nothing else, and every file path in the README and docs/ is there.

Run: pytest tests/test_docs.py
"""

from __future__ import annotations

import re

import pytest

from mnist_lit.inference.onnx_model import FORMAT_KEY
from tests.conftest import ROOT

ARCHITECTURE = ROOT / "docs" / "architecture.md"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# a file path as the docs write it, in backticks
PATH = re.compile(r"`((?:mnist_lit|tests|bench|conf|docs)/[\w/.-]+\.(?:py|yaml|md|html))`")
# a dotted module path, such as `mnist_lit.training.module`
MODULE = re.compile(r"`(mnist_lit(?:\.\w+)+)")


def without_parentheses(text: str) -> str:
    """The text with every (possibly nested) parenthesized part removed."""
    kept, depth = [], 0
    for char in text:
        depth += char == "("
        if depth == 0:
            kept.append(char)
        depth -= char == ")" and depth > 0
    return "".join(kept)


def module_map() -> dict[str, list[str]]:
    """docs/architecture.md's table: folder -> the modules its row names."""
    rows = {}
    for line in ARCHITECTURE.read_text().splitlines():
        # the table's rows start at the margin; the drawing above it is indented
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 3 or cells[0] in ("folder", "---"):
            continue
        folder = cells[0].strip("`").rstrip("/")
        names = re.findall(r"`([\w/.]+)`", without_parentheses(cells[2]))
        rows["" if folder == "top" else folder] = names
    return rows


def test_the_module_map_names_every_module_of_each_folder_and_nothing_else():
    rows = module_map()
    folders = {"", "data", "data/synthetic", "training", "reading", "inference", "serving"}
    assert folders <= set(rows)
    for folder, names in rows.items():
        here = ROOT / "mnist_lit" / folder
        modules = {p.stem for p in here.glob("*.py")}
        named = {name for name in names if "/" not in name}
        # a package's __init__ need not be named, when it holds no more than its docstring
        if "__init__" not in named and len((here / "__init__.py").read_text().splitlines()) < 8:
            modules.discard("__init__")
        assert named == modules, folder or "top"
        for name in names:
            if "/" in name:
                assert (here / name).exists(), f"{folder}/{name}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_path_and_module_a_doc_names_exists(doc):
    text = doc.read_text()
    missing = [path for path in PATH.findall(text) if not (ROOT / path).exists()]
    # the exported model's metadata key is written like a module path, and is none
    for dotted in set(MODULE.findall(text)) - {FORMAT_KEY}:
        parts = dotted.split(".")
        # the longest prefix that is a module or package; what follows is a name inside it
        found = any(
            (ROOT / "/".join(parts[:n])).with_suffix(".py").exists()
            or (ROOT / "/".join(parts[:n]) / "__init__.py").exists()
            for n in range(len(parts), 1, -1)
        )
        if not found:
            missing.append(dotted)
    assert missing == []
