"""Beyond one run: Optuna search, launchers, DDP on CPU, kill-and-resume, atomic checkpoints.

Run: pytest tests/training/test_scale.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from mnist_lit.training.runs import AtomicCheckpointIO
from tests.conftest import N_TEST, N_VAL, ROOT, run_cli, run_sweep, synthetic_overrides

# 1.5 is no probability: those trials fail
DROPOUTS = [0.1, 1.5]
RATES = [0.001, 0.002]
# three of the grid's four points, in whatever order: at least one of each dropout, so at least one
# trial fails and
# one succeeds. (The whole grid would end the study, and the sweeper cannot stop a study on a failed
# trial.)
TRIALS = 3


def grid_search() -> str:
    """The real optuna preset with a grid over two dropouts and two learning rates instead of TPE's
    draws."""
    preset = yaml.safe_load((ROOT / "conf" / "hparams_search" / "optuna.yaml").read_text())
    sampler = "override /hydra/sweeper/sampler"
    preset["defaults"] = [d for d in preset["defaults"] if sampler not in d] + [{sampler: "grid"}]
    sweeper = preset["hydra"]["sweeper"]
    # TPE's settings
    del sweeper["sampler"]
    sweeper["n_trials"] = TRIALS
    sweeper["params"] = {
        "optimizer": "choice(adam)",
        "optimizer.lr": f"choice({', '.join(map(str, RATES))})",
        "data.batch_size": "choice(64)",
        "model.dropout": f"choice({', '.join(map(str, DROPOUTS))})",
    }
    return "# @package _global_\n" + yaml.safe_dump(preset)


@pytest.mark.cli
def test_optuna_search_survives_a_failed_trial(tmp_path, synthetic_root):
    extra = tmp_path / "conf" / "hparams_search"
    extra.mkdir(parents=True)
    (extra / "grid.yaml").write_text(grid_search())
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "train.py",
        "-m",
        f"--config-dir={tmp_path / 'conf'}",
        "hparams_search=grid",
        f"hydra.sweep.dir={sweep}",
        "trainer.max_epochs=1",
        *synthetic_overrides(synthetic_root),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Best parameters" in proc.stdout + proc.stderr
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_params"]["model.dropout"] == 0.1
    summary = (sweep / "summary.md").read_text()
    assert summary.count("| ok |") >= 1
    assert summary.count("| failed |") >= 1
    assert summary.count("| ok |") + summary.count("| failed |") == TRIALS
    assert "dropout=1.5" in summary


@pytest.mark.cli
def test_joblib_launcher_with_dataloader_workers(tmp_path, synthetic_root):
    proc, sweep = run_sweep(
        tmp_path,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "seed=1,2",
        "data.loader=torchvision",
        "data.num_workers=1",
        "trainer.fast_dev_run=true",
        *synthetic_overrides(synthetic_root),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert all((sweep / str(i) / "metrics.json").is_file() for i in range(2))


@pytest.mark.cli
def test_ddp_cpu_one_run_directory(tmp_path, synthetic_root):
    proc = run_cli(
        "train.py",
        "trainer=ddp_cpu",
        "trainer.max_epochs=1",
        f"data.root={synthetic_root}",
        f"data.val_size={N_VAL}",
        "callbacks.progress_bar.refresh_rate=0",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list((tmp_path / "outputs" / "runs").iterdir())
    # both processes wrote into one run directory
    assert len(runs) == 1
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    assert metrics["epochs"] == 1
    support = [
        int(line.split(",")[1])
        for line in (runs[0] / "report" / "per_class.csv").read_text().splitlines()[1:]
    ]
    # the test set split across 2 ranks, synced back whole: none twice, none lost
    assert sum(support) == N_TEST


def _train_until_checkpoint(tmp_path, synthetic_root, epochs: int) -> subprocess.Popen:
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        f"trainer.max_epochs={epochs}",
        *synthetic_overrides(synthetic_root),
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "outputs" / "runs").glob("*/checkpoints/last.ckpt")):
        assert proc.poll() is None, "training ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc


@pytest.mark.cli
def test_sigkill_then_resume_finishes_the_planned_epochs(tmp_path, synthetic_root):
    epochs = 30
    proc = _train_until_checkpoint(tmp_path, synthetic_root, epochs)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (run,) = (tmp_path / "outputs" / "runs").iterdir()
    # it really died mid-run
    assert not (run / "metrics.json").exists()
    # intact, not torn
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] < epochs - 1
    overrides = synthetic_overrides(synthetic_root)
    resumed = run_cli(
        "train.py", "ckpt_path=last", f"trainer.max_epochs={epochs}", *overrides, cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # resumed in place
    assert [p.name for p in (tmp_path / "outputs" / "runs").iterdir()] == [run.name]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == epochs
    assert not list(run.glob("checkpoints/.*.tmp"))


@pytest.mark.cli
def test_sigterm_saves_a_checkpoint(tmp_path, synthetic_root):
    proc = _train_until_checkpoint(tmp_path, synthetic_root, epochs=200)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0
    (run,) = (tmp_path / "outputs" / "runs").iterdir()
    saved = torch.load(run / "checkpoints" / "interrupted.ckpt", weights_only=True)
    assert saved["global_step"] > 0


def test_atomic_checkpoint_leaves_the_old_file_on_failure(tmp_path):
    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1}, target)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full, say")

    with pytest.raises(RuntimeError):
        io.save_checkpoint({"epoch": 2, "bad": Unpicklable()}, target)
    assert torch.load(target, weights_only=True) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["last.ckpt"]
