"""The real train(): smoke runs, outputs, TensorBoard scalars, resume, checkpoints.

Run: pytest tests/training/test_train.py
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnist_lit import MnistLitError
from mnist_lit.models import CRITIC_PREFIX, rebuild, rebuild_critic
from mnist_lit.training.evaluation import evaluate_checkpoint
from mnist_lit.training.module import MNISTLitModule
from mnist_lit.training.run import train
from tests.conftest import N_TRAIN, N_VAL, REAL_EPOCHS

SHORT = ("trainer.max_epochs=1",)


def scalars(run_dir, tag: str) -> list[tuple[int, float]]:
    """(step, value) pairs of one scalar tag from the run's TensorBoard event files."""
    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


@pytest.mark.parametrize("model", ["cnn", "deep_cnn"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_every_model_and_optimizer_runs_one_batch_of_each_stage(
    make_cfg, model, optimizer, tmp_path
):
    metrics = train(
        make_cfg(f"model={model}", f"optimizer={optimizer}", "trainer.fast_dev_run=true")
    )
    assert 0.0 <= metrics["test/acc"] <= 1.0
    assert metrics["test/loss"] > 0
    assert (
        json.loads((tmp_path / "run" / "metrics.json").read_text())["test/acc"]
        == metrics["test/acc"]
    )


def test_run_outputs_and_tensorboard_scalars(make_cfg, tmp_path):
    metrics = train(make_cfg("trainer.max_epochs=2"))
    run = tmp_path / "run"
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    saved = json.loads((run / "metrics.json").read_text())
    for key in ("test/acc", "test/loss", "val/acc_best", "best_ckpt", "epochs"):
        assert key in saved
    assert saved["epochs"] == 2
    assert saved["best_ckpt"] == str(run / "checkpoints" / "best.ckpt")
    # the synthetic digits are easy; chance is 0.1
    assert saved["test/acc"] > 0.5
    for tag in ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "lr-Adam"):
        assert len(scalars(run, tag)) == 2, tag
    assert scalars(run, "test/acc")[-1][1] == pytest.approx(metrics["test/acc"])
    val_acc = [v for _, v in scalars(run, "val/acc")]
    assert scalars(run, "val/acc_best")[-1][1] == pytest.approx(max(val_acc))


def test_the_shape_critic_trains_beside_the_classifier_and_leaves_its_weights_as_they_were(
    make_cfg, tmp_path
):
    ckpts = {}
    for critic in (True, False):
        metrics = train(
            make_cfg(
                *SHORT,
                "trainer.limit_train_batches=6",
                f"model.shape_critic={critic}",
                run_dir=tmp_path / str(critic),
            )
        )
        ckpts[critic] = torch.load(metrics["best_ckpt"], map_location="cpu", weights_only=True)
    with_critic, without = (ckpts[c]["state_dict"] for c in (True, False))
    net = sorted(k for k in without if k.startswith("net."))
    assert net == sorted(k for k in with_critic if k.startswith("net."))
    for key in net:
        assert torch.equal(with_critic[key], without[key]), key
    # the critic was saved, and its odds count towards the chosen threshold
    critic = rebuild_critic(ckpts[True])
    assert critic is not None
    assert rebuild_critic(ckpts[False]) is None
    assert ckpts[True]["calibration"]["not_digit"] != ckpts[False]["calibration"]["not_digit"]


def test_a_checkpoint_from_before_the_shape_critic_loads_and_evaluates_without_one(
    make_cfg, tmp_path
):
    metrics = train(make_cfg(*SHORT, "trainer.limit_train_batches=2", *NARROW["cnn"]))
    ckpt = torch.load(metrics["best_ckpt"], map_location="cpu", weights_only=True)
    ckpt["state_dict"] = {
        k: v for k, v in ckpt["state_dict"].items() if not k.startswith(CRITIC_PREFIX)
    }
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    module = MNISTLitModule.load_from_checkpoint(old, map_location="cpu")
    assert module.not_digit.critic is None
    datamodule = instantiate(make_cfg().data, _partial_=True)
    assert 0.0 <= evaluate_checkpoint(old, datamodule, None, "cpu")["test/accept"] <= 1.0


def test_step_loss_is_logged_every_n_steps(make_cfg, tmp_path):
    train(make_cfg("trainer.max_epochs=2", "trainer.log_every_n_steps=3"))
    steps_per_epoch = (N_TRAIN - N_VAL) // 64
    # Lightning's cadence, across epochs
    expected = [s for s in range(2 * steps_per_epoch) if (s + 1) % 3 == 0]
    assert [step for step, _ in scalars(tmp_path / "run", "train/loss_step")] == expected


def test_a_run_without_validation_tests_without_a_rejection_threshold(make_cfg, tmp_path):
    # the threshold is chosen on validation; with none, the test has no "accepted" share to report
    metrics = train(make_cfg("trainer.max_epochs=1", "trainer.limit_val_batches=0"))
    assert 0.0 <= metrics["test/acc"] <= 1.0
    assert "test/accept" not in metrics


def test_the_best_checkpoint_is_the_one_tested(make_cfg, tmp_path):
    metrics = train(make_cfg("trainer.max_epochs=2"))
    best = torch.load(metrics["best_ckpt"], weights_only=True)
    # the ModelCheckpoint wrote it, with its monitor state
    assert best["callbacks"]
    val_accs = [v for _, v in scalars(tmp_path / "run", "val/acc")]
    assert best["epoch"] == val_accs.index(max(val_accs))


def test_sgd_step_lr_drops_tenfold(make_cfg, tmp_path):
    train(make_cfg("optimizer=sgd", "scheduler.step_size=1", "trainer.max_epochs=3"))
    lrs = [v for _, v in scalars(tmp_path / "run", "lr-SGD")]
    assert lrs == pytest.approx([0.01, 0.001, 0.0001])


def test_resume_continues_at_the_right_epoch(make_cfg, tmp_path):
    first = train(make_cfg(*SHORT, run_dir=tmp_path / "a"))
    assert first["epochs"] == 1
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    resumed = train(make_cfg("trainer.max_epochs=3", f"ckpt_path={last}", run_dir=tmp_path / "b"))
    assert resumed["epochs"] == 3
    # epoch 0 came from the checkpoint
    assert min(v for _, v in scalars(tmp_path / "b", "epoch")) == 1
    assert len(scalars(tmp_path / "b", "train/loss")) == 2
    # the best is remembered across the resume
    assert resumed["val/acc_best"] >= first["val/acc_best"]


def test_missing_ckpt_path_is_a_clear_error(make_cfg, tmp_path):
    with pytest.raises(MnistLitError, match=r"ckpt_path=.*does not exist"):
        train(make_cfg(f"ckpt_path={tmp_path / 'nope.ckpt'}"))
    assert not (tmp_path / "run" / "metrics.json").exists()


# small widths of each model choice, so that a checkpoint test trains in seconds
NARROW = {
    "cnn": ("model.conv1=8", "model.conv2=16", "model.fc=24"),
    "deep_cnn": ("model.channels=[4,8,8,8]", "model.fc1=32", "model.fc2=16"),
}


@pytest.mark.parametrize("model", sorted(NARROW))
def test_checkpoint_loads_without_hydra(make_cfg, tmp_path, model):
    metrics = train(make_cfg(*SHORT, f"model={model}", *NARROW[model]))
    x = torch.randn(4, 1, 28, 28)
    module = MNISTLitModule.load_from_checkpoint(metrics["best_ckpt"], map_location="cpu").eval()
    # the code-free path predict.py takes: plain tensors and settings, no pickled objects
    ckpt = torch.load(metrics["best_ckpt"], map_location="cpu", weights_only=True)
    hp = ckpt["hyper_parameters"]
    assert (hp["mean"], hp["std"]) == (0.1307, 0.3081)
    net = rebuild(ckpt)
    with torch.no_grad():
        torch.testing.assert_close(net(x), module(x))
    assert hp["optimizer"]["_target_"] == "torch.optim.adam.Adam"
    # the cosine schedule is sized from it
    module._trainer = SimpleNamespace(estimated_stepping_batches=100)
    # and it can train again
    assert module.configure_optimizers()["optimizer"].defaults["lr"] == 1e-3


def test_logger_none_writes_no_events_and_csv_writes_metrics(make_cfg, tmp_path):
    train(make_cfg(*SHORT, "logger=none", run_dir=tmp_path / "none"))
    assert not (tmp_path / "none" / "tensorboard").exists()
    train(make_cfg(*SHORT, "logger=csv", run_dir=tmp_path / "csv"))
    assert "test/acc" in (tmp_path / "csv" / "csv" / "metrics.csv").read_text()


@pytest.mark.real_data
def test_real_mnist_two_epochs_accuracy_floor(real_run):
    assert real_run["epochs"] == REAL_EPOCHS
    # two epochs, four training seeds: 98.9-99.0% (docs/testing.md)
    assert real_run["test/acc"] >= 0.985
