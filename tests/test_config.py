"""Every config group composes and its choices instantiate; bad values are refused before any work.

Run: pytest tests/test_config.py
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import get_class, instantiate
from lightning.pytorch.loggers import MLFlowLogger
from omegaconf.errors import ValidationError

from mnist_lit import MnistLitError
from mnist_lit.data.datamodule import MNISTDataModule
from mnist_lit.schema import validate
from mnist_lit.training.loggers import build_loggers
from tests.conftest import ROOT, compose_cfg, run_cli


def choices(group: str) -> list[str]:
    """The choices of a config group: one YAML each."""
    return sorted(f.stem for f in (ROOT / "conf" / group).glob("*.yaml"))


def model_of(cfg):
    model = instantiate(cfg.model, optimizer=cfg.optimizer, scheduler=cfg.scheduler)
    # a whole-run scheduler is sized from the Trainer: a stand-in with the run's length
    model._trainer = SimpleNamespace(estimated_stepping_batches=100)
    return model


def test_default_config_is_the_reference_cnn_with_adam_for_10_epochs(cfg_global):
    assert cfg_global.seed == 42
    assert cfg_global.ckpt_path is None
    assert cfg_global.data.batch_size == 64
    assert cfg_global.data.val_size == 5000
    assert cfg_global.model.arch == "cnn"
    assert cfg_global.optimizer._target_ == "torch.optim.Adam"
    assert cfg_global.optimizer.lr == 1e-3
    assert cfg_global.scheduler._target_ == "torch.optim.lr_scheduler.CosineAnnealingLR"
    assert cfg_global.trainer.max_epochs == 10
    assert cfg_global.trainer.accelerator == "auto"


@pytest.mark.parametrize("choice", choices("data"))
def test_data_choice_instantiates_a_datamodule(choice):
    cfg = compose_cfg([f"data={choice}"])
    validate(cfg)
    assert instantiate(cfg.data).batch_size == cfg.data.batch_size


@pytest.mark.parametrize("negatives", [0.0, 0.125])
@pytest.mark.parametrize("choice", choices("model"))
def test_model_choice_builds_its_network_with_a_not_a_digit_output_when_taught_one(
    choice, negatives
):
    cfg = compose_cfg([f"model={choice}", f"model.negatives={negatives}"])
    model = model_of(cfg)
    assert model.hparams.arch == cfg.model.arch
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 11 if negatives else 10)


@pytest.mark.parametrize("choice", choices("optimizer"))
def test_optimizer_choice_configures_its_optimizer(choice):
    cfg = compose_cfg([f"optimizer={choice}"])
    configured = model_of(cfg).configure_optimizers()
    optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
    assert optimizer.defaults["lr"] == cfg.optimizer.lr
    assert type(optimizer).__name__.lower() == choice


@pytest.mark.parametrize("choice", choices("trainer"))
def test_trainer_choice_is_lightning_trainer_arguments(choice):
    node = compose_cfg([f"trainer={choice}"]).trainer
    assert node._target_ == "lightning.pytorch.Trainer"
    assert node.max_epochs >= 1


@pytest.mark.parametrize("choice", choices("callbacks"))
def test_callbacks_choice_instantiates_every_callback_with_its_settings_in_the_run_dir(
    choice, make_cfg, tmp_path
):
    cfg = make_cfg(f"callbacks={choice}")
    made = {name: instantiate(node) for name, node in cfg.callbacks.items() if node}
    for name, obj in made.items():
        assert isinstance(obj, get_class(cfg.callbacks[name]._target_))
    checkpoint, settings = made["model_checkpoint"], cfg.callbacks.model_checkpoint
    assert Path(checkpoint.dirpath) == tmp_path / "run" / "checkpoints"
    assert (
        checkpoint.monitor,
        checkpoint.mode,
        checkpoint.save_top_k,
        checkpoint.save_last,
        checkpoint.filename,
    ) == (
        settings.monitor,
        settings.mode,
        settings.save_top_k,
        settings.save_last,
        settings.filename,
    )
    assert made["on_exception"].path == tmp_path / "run" / "checkpoints" / "interrupted.ckpt"
    assert made["lr_monitor"].logging_interval == cfg.callbacks.lr_monitor.logging_interval
    # as synthetic_overrides set it
    assert made["progress_bar"].refresh_rate == 0
    assert made["report"].dirpath == tmp_path / "run" / "report"


@pytest.mark.parametrize("choice", choices("logger"))
def test_logger_choice_instantiates_its_loggers_writing_into_the_run_dir(
    choice, make_cfg, tmp_path
):
    node = make_cfg(f"logger={choice}").logger
    assert (node is None) == (choice == "none")
    made = build_loggers(node)
    targets = (
        []
        if node is None
        else [node._target_]
        if "_target_" in node
        else [n._target_ for n in node.values()]
    )
    assert len(made) == len(targets) == {"none": 0, "many": 3}.get(choice, 1)
    for logger, target in zip(made, targets):
        assert isinstance(logger, get_class(target))
        # MLflow's is its store's
        if hasattr(logger, "save_dir") and not isinstance(logger, MLFlowLogger):
            assert Path(logger.save_dir) == tmp_path / "run"


@pytest.mark.parametrize("choice", choices("experiment"))
def test_experiment_preset_instantiates_everything_it_touches(choice):
    cfg = compose_cfg([f"experiment={choice}"])
    validate(cfg)
    datamodule = instantiate(cfg.data)
    assert isinstance(datamodule, MNISTDataModule)
    assert datamodule.batch_size == cfg.data.batch_size
    assert (datamodule.augment is not None) == cfg.data.augment
    # every preset keeps the not-a-digit output, except the speedrun, which trades it for speed
    outputs = 10 if choice == "speedrun" else 11
    assert model_of(cfg)(torch.zeros(2, 1, 28, 28)).shape == (2, outputs)


@pytest.mark.parametrize("choice", choices("hparams_search"))
def test_hparams_search_configures_a_maximizing_sweep(choice):
    # it configures Hydra's sweeper
    hydra_cfg = compose_cfg([f"hparams_search={choice}"], with_hydra=True).hydra
    assert hydra_cfg.mode.name == "MULTIRUN"
    assert {"optimizer", "optimizer.lr", "data.batch_size", "model.dropout"} <= set(
        hydra_cfg.sweeper.params
    )
    assert hydra_cfg.sweeper.direction == "maximize"


def test_slurm_launcher_gives_one_task_per_gpu():
    hydra_cfg = compose_cfg(["hydra/launcher=slurm", "trainer=ddp"], with_hydra=True).hydra
    assert "SlurmLauncher" in hydra_cfg.launcher._target_
    assert hydra_cfg.launcher.tasks_per_node == hydra_cfg.launcher.gpus_per_node


def test_sgd_brings_step_lr():
    cfg = compose_cfg(["optimizer=sgd"])
    configured = model_of(cfg).configure_optimizers()
    scheduler = configured["lr_scheduler"]["scheduler"]
    assert type(scheduler).__name__ == "StepLR"
    assert (scheduler.step_size, scheduler.gamma) == (15, 0.1)
    assert configured["optimizer"].defaults["momentum"] == 0.9


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batch_size=-1", "data.batch_size=-1 is invalid: it must be at least 1"),
        ("data.val_size=0", "data.val_size=0 is invalid"),
        ("data.val_size=60000", "data.val_size=60000 is invalid: it must be between 1 and 59999"),
        ("data.normalize=zscore", "data.normalize=zscore is invalid: it must be one of"),
        ("data.loader=dali", "data.loader=dali is invalid: it must be one of"),
        ("data.num_workers=-2", "data.num_workers=-2 is invalid"),
        ("data.aug_degrees=270", "data.aug_degrees=270.0 is invalid"),
        ("model.dropout=1.5", "model.dropout=1.5 is invalid"),
        ("model.depth=0", "model.depth=0 is invalid"),
        (
            "model=deep_cnn model.channels=[1,2]",
            "model.channels=[1, 2] is invalid: it must be 4 conv widths",
        ),
        ("model=deep_cnn model.channels=[8,0,8,8]", "model.channels=[8, 0, 8, 8] is invalid"),
        ("model.conv1=0", "model.conv1=0 is invalid: it must be at least 1"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 is invalid"),
        ("optimizer.lr=0", "optimizer.lr=0.0 is invalid"),
        ("optimizer=sgd optimizer.momentum=2", "optimizer.momentum=2.0 is invalid"),
    ],
)
def test_out_of_range_values_are_refused_in_one_line(override, message):
    with pytest.raises(MnistLitError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate(compose_cfg(override.split()))


def test_wrong_type_is_refused_while_composing():
    with pytest.raises((ConfigCompositionException, ValidationError), match="optimizer.lr"):
        compose_cfg(["optimizer.lr=abc"])


@pytest.mark.cli
def test_help_lists_exactly_the_choices_a_user_can_pick(tmp_path):
    proc = run_cli("train.py", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    section = proc.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    listed = {}
    for line in section.splitlines():
        group, sep, options = line.partition(": ")
        if sep and "(" not in line:
            listed[group] = options.split(", ")
    groups = sorted(d.name for d in (ROOT / "conf").iterdir() if d.is_dir() and d.name != "hydra")
    assert sorted(listed) == groups
    for group, options in listed.items():
        assert options == choices(group), group


@pytest.mark.cli
def test_invalid_value_stops_the_cli_before_any_work(tmp_path):
    proc = run_cli("train.py", "data.batch_size=-1", "hydra.run.dir=run", cwd=tmp_path)
    assert proc.returncode != 0
    assert "error: data.batch_size=-1 is invalid" in proc.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert not (tmp_path / "run" / "tensorboard").exists()


@pytest.mark.cli
def test_evaluate_validates_its_data_settings(tmp_path):
    proc = run_cli("evaluate.py", "data.normalize=zscore", cwd=tmp_path)
    assert proc.returncode != 0
    assert "error: data.normalize=zscore is invalid" in proc.stderr


@pytest.mark.cli
@pytest.mark.parametrize(
    ("script", "setting", "error"),
    [
        ("predict.py", "format=xml", "format=xml is invalid: it must be one of ['jsonl', 'table']"),
        ("predict.py", "topk=0", "topk=0 is invalid: it must be between 1 and 10"),
        (
            "predict.py",
            "workers=0",
            "workers=0 is invalid: it must be auto or a whole number, at least 1",
        ),
        (
            "predict.py",
            "not_digit=abc",
            "not_digit=abc is invalid: it must be auto or a probability in [0, 1]",
        ),
        (
            "predict.py",
            "read=lines",
            "read=lines is invalid: it must be one of ['auto', 'digit', 'number']",
        ),
        (
            "serve.py",
            "host=1.2.3.4",
            "host=1.2.3.4 is invalid: it must be one of ['0.0.0.0', '127.0.0.1', '::']",
        ),
        ("serve.py", "port=80", "port=80 is invalid: it must be a port from 1024 to 65535"),
        ("serve.py", "unsure=2", "unsure=2.0 is invalid: it must be a probability gap in [0, 1]"),
        (
            "export.py",
            "out=model.txt",
            "out=model.txt is invalid: it must be a file name ending in .onnx",
        ),
        ("evaluate.py", "data.batch_size=0", "data.batch_size=0 is invalid: it must be at least 1"),
    ],
)
def test_every_commands_bad_setting_is_one_line_before_any_work(tmp_path, script, setting, error):
    proc = run_cli(
        script, "image=x.png" if script == "predict.py" else "ckpt=none.ckpt", setting, cwd=tmp_path
    )
    assert proc.returncode == 1
    # not the missing checkpoint: checked first
    assert proc.stderr.strip().splitlines() == [f"error: {error}"]
    # nothing written
    assert list(tmp_path.iterdir()) == []


@pytest.mark.cli
def test_predict_without_pictures_says_how_to_give_them(tmp_path):
    proc = run_cli("predict.py", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "error: give image: a picture, a folder or a glob (image=FILE, image=FOLDER or "
        "image='GLOB')"
    )
