"""TensorBoard images, report files, evaluate.py, a failed sweep job.  Run: pytest
tests/training/test_report.py"""

from __future__ import annotations

import csv
import json

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnist_lit.training.evaluation import REPORT_FILES
from mnist_lit.training.run import train
from tests.conftest import FAST, N_TEST, run_cli, run_sweep


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def run(tmp_path_factory, synthetic_root):
    """A 2-epoch run on the synthetic data, shared by the tests of its outputs."""
    from tests.conftest import compose_cfg, synthetic_overrides

    cfg = compose_cfg([*synthetic_overrides(synthetic_root), "trainer.max_epochs=2"])
    run_dir = tmp_path_factory.mktemp("report_run")
    cfg.run_dir = str(run_dir)
    return run_dir, train(cfg)


def test_images_and_hparams_in_tensorboard(run):
    run_dir, _ = run
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    assert {"train/batch", "test/misclassified", "test/confusion_matrix"} <= set(
        acc.Tags()["images"]
    )
    batch = acc.Images("train/batch")[0]
    assert batch.width > 28 * 8
    scalars = set(acc.Tags()["scalars"])
    assert {f"test/acc_class_{k}" for k in range(10)} <= scalars
    # the hparams tab: settings beside the final metrics
    assert acc.PluginTagToContent("hparams")
    assert "hp/test/acc" in scalars


def test_report_files_are_complete_and_count_every_test_image(run):
    run_dir, metrics = run
    report = run_dir / "report"
    for name in ("curves.png", "confusion_matrix.png", "misclassified.png", "reliability.png"):
        with Image.open(report / name) as img:
            # a complete, valid PNG
            img.verify()
        with Image.open(report / name) as img:
            # at least one digit tile (or 'none misclassified')
            assert img.width >= 28 * 3
            assert img.height >= 28 * 3
    rows = read_csv(report / "per_class.csv")
    assert [int(r["digit"]) for r in rows] == list(range(10))
    # every synthetic test image, none dropped
    assert sum(int(r["support"]) for r in rows) == N_TEST
    correct = sum(int(r["correct"]) for r in rows)
    assert correct / N_TEST == pytest.approx(metrics["test/acc"], abs=1e-6)


@pytest.mark.cli
def test_evaluate_matches_metrics_json(run, synthetic_root, tmp_path):
    run_dir, metrics = run
    out = tmp_path / "eval"
    args = (
        f"ckpt={metrics['best_ckpt']}",
        f"data.root={synthetic_root}",
        f"out={out}",
        "accelerator=cpu",
    )
    proc = run_cli("evaluate.py", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("test loss"))
    loss, acc = float(line.split()[2]), float(line.split()[5].rstrip("%")) / 100
    assert loss == pytest.approx(metrics["test/loss"], abs=1e-4)
    assert acc == pytest.approx(metrics["test/acc"], abs=1e-4)
    assert "confusion matrix" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(REPORT_FILES)
    ece = next(x for x in proc.stdout.splitlines() if x.startswith("calibration error"))
    assert f"{metrics['test/ece_raw']:.4f} raw, {metrics['test/ece']:.4f}" in ece
    # the report is not overwritten
    again = run_cli("evaluate.py", *args, cwd=tmp_path)
    assert again.returncode != 0
    assert "already holds a report" in again.stderr


@pytest.mark.cli
def test_failed_job_is_listed_and_does_not_hide_the_others(tmp_path, synthetic_root):
    proc, sweep = run_sweep(
        tmp_path, "model.dropout=0.1,1.5,0.2", f"data.root={synthetic_root}", *FAST
    )
    assert proc.returncode != 0
    assert "1 of 3 jobs failed" in proc.stderr
    rows = read_csv(sweep / "summary.csv")
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    assert "model.dropout=1.5 is invalid" in rows[-1]["error"]
    assert all(json.loads((sweep / r["job"] / "metrics.json").read_text()) for r in rows[:2])


def test_a_resumed_runs_curves_start_at_epoch_1(make_cfg, tmp_path):
    first = train(make_cfg("trainer.max_epochs=1", run_dir=tmp_path / "a"))
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    train(make_cfg("trainer.max_epochs=2", f"ckpt_path={last}", run_dir=tmp_path / "b"))
    saved = torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]
    history = next(state["history"] for key, state in saved.items() if key.startswith("RunReport"))
    # the first epoch's points came with the checkpoint
    assert sorted(history) == [0, 1]
    assert history[0]["val/acc"] == pytest.approx(first["val/acc"])
    assert {"train/loss", "val/loss"} <= set(history[1])
    assert Image.open(tmp_path / "b" / "report" / "curves.png").size[0] > 0
