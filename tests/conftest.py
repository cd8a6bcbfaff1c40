"""Shared fixtures: the composed config, synthetic IDX data, a CLI runner.  Run: make test"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize
from hydra.core.global_hydra import GlobalHydra
from hypothesis import settings
from omegaconf import DictConfig, open_dict
from PIL import Image, ImageDraw

import mnist_lit.schema  # noqa: F401  (registers the config schemas, as train.py's import does)

ROOT = Path(__file__).resolve().parents[1]

# Fuzzing: under CI the same cases every run (a failure there is the code's, never the draw's);
# locally new draws
# each run, to find more. Neither keeps a database of examples in the checkout.
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("local", database=None)
settings.load_profile("ci" if os.environ.get("CI") else "local")
# synthetic sizes: a few batches of each split
N_TRAIN, N_TEST, N_VAL = 320, 160, 64
# time bounds in tests (a server stopping, a page answering) are this many times the product's own:
# a CI machine
# runs the whole suite beside them
TIME_FACTOR = float(os.environ.get("TIME_FACTOR", "3" if os.environ.get("CI") else "1.5"))
# the real-data run that the slow tests share (real_run)
REAL_EPOCHS = 2
REAL_SEED = 42
# the real-data run is the same model on every machine: CPU, one device, 32-bit, deterministic
# kernels, one seed
PINNED = (
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "trainer.precision=32-true",
    "trainer.deterministic=true",
    f"seed={REAL_SEED}",
    "callbacks.progress_bar.refresh_rate=0",
)
# a one-batch run of every stage on CPU, as a user's smoke test; with data.root, it trains on the
# synthetic data
FAST = (
    "trainer.fast_dev_run=true",
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    f"data.val_size={N_VAL}",
)


def poll(condition: Callable[[], bool], seconds: float, every: float = 0.05) -> bool:
    """Whether `condition` comes true within `seconds`, asked every `every` seconds: a deadline, not
    a sleep."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """Write a uint8 array as an IDX file (the format of MNIST's raw files)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def make_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable synthetic 'digits': class k is a bright bar at a class-specific place, plus
    noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        row = 3 + 2 * int(k)
        images[i, row : row + 2, 4:24] = 255
    return images, labels


def digit_picture(path: Path, value: int = 1) -> Path:
    """A dark pen stroke on light paper, saved where asked."""
    img = Image.new("RGB", (120, 160), (235, 235, 230))
    ImageDraw.Draw(img).line([(60 + 3 * value, 30), (55, 130)], fill=(25, 25, 25), width=7)
    img.save(path)
    return path


def make_mnist(root: Path, n_train: int = N_TRAIN, n_test: int = N_TEST) -> Path:
    """A tiny MNIST in torchvision's layout under root; returns root."""
    raw = root / "MNIST" / "raw"
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = make_digits(n, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic MNIST shared by the whole session (read-only for tests)."""
    return make_mnist(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="session")
def cfg_global() -> DictConfig:
    """The default config, composed once without a Hydra run."""
    GlobalHydra.instance().clear()
    with initialize(version_base="1.3", config_path="../conf"):
        return compose(config_name="config")


def compose_cfg(overrides: list[str], with_hydra: bool = False) -> DictConfig:
    """Compose the app's config with overrides, outside a Hydra run (with the `hydra` node if
    asked)."""
    GlobalHydra.instance().clear()
    with initialize(version_base="1.3", config_path="../conf"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=with_hydra)


@pytest.fixture
def make_cfg(tmp_path: Path, synthetic_root: Path):
    """Factory: a config that trains on the synthetic data and writes only under tmp_path."""

    def _make(*overrides: str, run_dir: Path | None = None) -> DictConfig:
        run_dir = run_dir or tmp_path / "run"
        cfg = compose_cfg([*synthetic_overrides(synthetic_root), *overrides])
        with open_dict(cfg):
            cfg.run_dir = str(run_dir)
        return cfg

    return _make


def real_data_root() -> Path:
    """DATA_DIR, or ./data, holding the real MNIST; fails loudly when DATA_DIR is set but empty."""
    from mnist_lit.data.idx import missing_files

    root = Path(os.environ.get("DATA_DIR", ROOT / "data"))
    missing = missing_files(root)
    if missing and "DATA_DIR" in os.environ:
        pytest.fail(f"DATA_DIR={root} lacks {missing}")
    if missing:
        pytest.skip(f"real MNIST not found in {root}/MNIST/raw; set DATA_DIR to run the slow tests")
    return root


def run_cli(
    script: str, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 300
):
    """Run train.py or predict.py as a user would, from `cwd` (so ./outputs lands there)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd,
    )


def run_sweep(tmp_path: Path, *overrides: str) -> tuple[subprocess.CompletedProcess, Path]:
    """`train.py -m` with the overrides, swept into tmp_path/sweep: the process and that folder."""
    sweep = tmp_path / "sweep"
    proc = run_cli("train.py", "-m", *overrides, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    return proc, sweep


def synthetic_overrides(root: Path) -> list[str]:
    """Overrides that train on the tiny synthetic MNIST, on CPU, quietly."""
    return [
        f"data.root={root}",
        f"data.val_size={N_VAL}",
        "data.download=false",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "callbacks.progress_bar.refresh_rate=0",
    ]


ASSETS = ROOT / "tests" / "assets"


@dataclass(frozen=True)
class Tiny:
    """The tiny fixed model of tests/assets (made by make_tiny_model.py), its ONNX twin, its
    pictures and the answers predict.py recorded for them: for the tests of how the pieces are
    wired, never of how good it is."""

    ckpt: Path = ASSETS / "tiny.ckpt"
    onnx: Path = ASSETS / "tiny.onnx"
    pictures: Path = ASSETS / "pictures"

    def recorded(self, model: str = "ckpt") -> dict[str, dict]:
        """The answer predict.py recorded for each picture with the checkpoint (or "onnx", its
        twin), by file name."""
        lines = (ASSETS / f"answers-{model}.jsonl").read_text().splitlines()
        return {line.pop("image"): line for line in map(json.loads, lines)}


# answers are rounded to 6 decimals; a batch of other size or another runtime moves the last ones
ROUNDING = 1e-5


def approx_answer(value: object) -> object:
    """An answer to compare with ==: the same verdicts, digits, numbers and boxes, probabilities
    within ROUNDING."""
    if isinstance(value, dict):
        return {key: approx_answer(item) for key, item in value.items()}
    if isinstance(value, list):
        return [approx_answer(item) for item in value]
    return pytest.approx(value, abs=ROUNDING) if isinstance(value, float) else value


@pytest.fixture(scope="session")
def tiny() -> Tiny:
    """The tiny fixed model and its recorded answers."""
    return Tiny()


@pytest.fixture(scope="session")
def synthetic_ckpt(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path) -> Path:
    """best.ckpt of a one-epoch run on the synthetic data, inside an outputs/runs/<run>/ tree."""
    from mnist_lit.training.run import train

    out = tmp_path_factory.mktemp("outputs")
    cfg = compose_cfg([*synthetic_overrides(synthetic_root), "trainer.max_epochs=1"])
    with open_dict(cfg):
        cfg.run_dir = str(out / "runs" / "2026-01-01_00-00-00")
    return Path(train(cfg)["best_ckpt"])


@pytest.fixture(scope="session")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """metrics.json of two epochs of the default CNN on the real MNIST (about a minute on 2 cores):
    one epoch is too few for the "not a digit" boundary (a thick looping scribble on the pad reads
    as 87 after one, is rejected after two)."""
    from mnist_lit.training.run import train

    cfg = compose_cfg(
        [f"data.root={real_data_root()}", f"trainer.max_epochs={REAL_EPOCHS}", *PINNED]
    )
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path_factory.mktemp("real_run"))
    return train(cfg)


# what a test needs that takes seconds, not ms
SLOW_MARKS = ("real_data", "server", "browser", "cli", "soak")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `slow` every test that needs the real data, a server, a browser or a process of its
    own."""
    for item in items:
        if any(item.get_closest_marker(mark) for mark in SLOW_MARKS):
            item.add_marker(pytest.mark.slow)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI (CI set), a skipped test fails the run: whatever it needed must be there."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") and skipped and session.exitstatus == 0:
        print(f"\nCI: {len(skipped)} test(s) skipped; under CI every test must run")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
