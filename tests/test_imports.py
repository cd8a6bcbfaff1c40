"""The package's rooms keep their rules: imports point one way and never in a circle; reading,
inference and serving never need Lightning; predict.py and serve.py on an ONNX model never load
torch.

Run: pytest tests/test_imports.py
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "mnist_lit"
# layer -> the layers its modules may import ("top": the modules beside mnist_lit/__init__.py)
LAYERS = {
    "top": {"top"},
    # reading: the synthetic pictures are laid out by the recipe of the 28x28 field
    "data": {"data", "reading", "top"},
    "training": {"training", "data", "reading", "top"},
    "reading": {"reading", "top"},
    "inference": {"inference", "reading", "top"},
    "serving": {"serving", "inference", "reading", "top"},
}
# the schema checks every command's settings: it reads the layers' torch-free choice lists
SCHEMA_READS = {"mnist_lit.data", "mnist_lit.reading.segment", "mnist_lit.reading.preprocess"}
NO_LIGHTNING = ("reading", "inference", "serving")
# the synthetic pictures are drawn by torch alone
SYNTHETIC = "mnist_lit.data.synthetic"
HEAVY = ("lightning", "pytorch_lightning", "torchvision", "torchmetrics", "tensorboard")
# everything predict.py and serve.py import, and what they import to run an .onnx model
ONNX_PATH = (
    "mnist_lit.cli",
    "mnist_lit.checkpoints",
    "mnist_lit.inference.predictor",
    "mnist_lit.inference.sources",
    "mnist_lit.inference.table",
    "mnist_lit.inference.annotate",
    "mnist_lit.inference.onnx_model",
    "mnist_lit.serving.server",
    "mnist_lit.serving.api",
    "mnist_lit.serving.loop",
    "mnist_lit.serving.access",
    "mnist_lit.serving.limits",
    "mnist_lit.serving.observe",
    "mnist_lit.serving.protocol",
    "mnist_lit.serving.shutdown",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function (a lazy import is still a
    dependency)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            # `from mnist_lit import cli` imports the module mnist_lit.cli
            found |= {
                f"{node.module}.{alias.name}"
                for alias in node.names
                if node.module.startswith("mnist_lit")
            }
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """mnist_lit module -> the mnist_lit modules and third-party packages it imports."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m if m.startswith("mnist_lit") else m.split(".")[0] for m in imports_of(path)}
        & (set(modules) | {m.split(".")[0] for m in imports_of(path)})
        for name, path in modules.items()
    }


def layer(module: str) -> str:
    parts = module.split(".")
    return (
        parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else "top"
    )


def test_no_module_imports_itself_round_a_circle(graph):
    inner = {name: {m for m in deps if m in graph and m != name} for name, deps in graph.items()}
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for dep in sorted(inner[name]):
            assert state.get(dep) != "open", f"import cycle: {' -> '.join([*path, name, dep])}"
            if dep not in state:
                visit(dep, [*path, name])
        state[name] = "done"

    for name in sorted(inner):
        if name not in state:
            visit(name, [])


def test_every_import_points_down_the_layers(graph):
    crossed = []
    for name, deps in graph.items():
        for dep in deps:
            if not dep.startswith("mnist_lit") or dep == "mnist_lit" or dep.startswith(name + "."):
                continue
            allowed = LAYERS[layer(name)] | (
                {"data", "reading"} if name == "mnist_lit.schema" else set()
            )
            if layer(dep) not in allowed or (
                name == "mnist_lit.schema" and layer(dep) != "top" and dep not in SCHEMA_READS
            ):
                crossed.append(f"{name} -> {dep}")
    assert crossed == []


def test_reading_inference_and_serving_never_import_lightning(graph):
    found = [
        f"{name} -> {dep}"
        for name, deps in graph.items()
        if layer(name) in NO_LIGHTNING
        for dep in deps
        if dep in HEAVY
    ]
    assert found == []


def test_the_synthetic_pictures_never_import_lightning_or_training(graph):
    found = [
        f"{name} -> {dep}"
        for name, deps in graph.items()
        if name.startswith(SYNTHETIC)
        for dep in deps
        if dep in ("lightning", "pytorch_lightning") or dep.startswith("mnist_lit.training")
    ]
    assert found == []


@pytest.mark.cli
def test_what_predict_and_serve_import_for_an_onnx_model_loads_no_torch_and_no_lightning():
    code = (
        "import importlib, json, sys\n"
        f"for name in {ONNX_PATH!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    loaded = set(json.loads(proc.stdout))
    # the imports did run
    assert "mnist_lit" in loaded
    assert loaded & {"torch", *HEAVY} == set()
