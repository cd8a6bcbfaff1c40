"""Every config group composes and its choices instantiate.  Run: pytest tests/test_config.py"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import open_dict

from tests.conftest import ROOT, compose_cfg

GROUPS = sorted(p.name for p in (ROOT / "conf").iterdir() if p.is_dir())
CHOICES = [(g, f.stem) for g in GROUPS for f in sorted((ROOT / "conf" / g).glob("*.yaml"))]


def test_defaults(cfg_global):
    assert cfg_global.seed == 42
    assert cfg_global.ckpt_path is None
    assert cfg_global.data.batch_size == 64
    assert cfg_global.data.val_size == 5000
    assert cfg_global.model.arch == "cnn"
    assert cfg_global.optimizer._target_ == "torch.optim.Adam"
    assert cfg_global.optimizer.lr == 1e-3
    assert cfg_global.scheduler is None
    assert cfg_global.trainer.max_epochs == 10
    assert cfg_global.trainer.accelerator == "auto"


def test_every_group_has_choices():
    assert {"data", "model", "optimizer", "trainer", "logger", "callbacks"} <= set(GROUPS)
    assert len(CHOICES) >= 12


@pytest.mark.parametrize(("group", "choice"), CHOICES, ids=[f"{g}={c}" for g, c in CHOICES])
def test_choice_composes_and_instantiates(group, choice, tmp_path: Path):
    cfg = compose_cfg([f"{group}={choice}"])
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path)
    node = cfg.get(group)
    if group == "model":
        model = instantiate(cfg.model, optimizer=cfg.optimizer, scheduler=cfg.scheduler)
        assert model.hparams.arch == cfg.model.arch
    elif group == "optimizer":
        model = instantiate(cfg.model, optimizer=cfg.optimizer, scheduler=cfg.scheduler)
        configured = model.configure_optimizers()
        optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
        assert optimizer.defaults["lr"] == cfg.optimizer.lr
    elif group == "trainer":
        assert node.max_epochs >= 1
        assert node._target_ == "lightning.pytorch.Trainer"
    elif group == "callbacks":
        assert all(instantiate(cb) is not None for cb in node.values())
    elif group == "experiment":  # a preset over the whole config: everything it touches must instantiate
        model = instantiate(cfg.model, optimizer=cfg.optimizer, scheduler=cfg.scheduler)
        assert instantiate(cfg.data) is not None
        assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    elif group == "hparams_search":  # it configures Hydra's sweeper: compose with the Hydra node to see it
        hydra_cfg = compose_cfg([f"{group}={choice}"], with_hydra=True).hydra
        assert hydra_cfg.mode.name == "MULTIRUN"
        assert {"optimizer", "optimizer.lr", "data.batch_size", "model.dropout"} <= set(hydra_cfg.sweeper.params)
        assert hydra_cfg.sweeper.direction == "maximize"
    elif node:  # data, logger
        assert instantiate(node) is not None
    else:
        assert choice == "none"


def test_sgd_brings_step_lr():
    cfg = compose_cfg(["optimizer=sgd"])
    model = instantiate(cfg.model, optimizer=cfg.optimizer, scheduler=cfg.scheduler)
    configured = model.configure_optimizers()
    scheduler = configured["lr_scheduler"]["scheduler"]
    assert type(scheduler).__name__ == "StepLR"
    assert (scheduler.step_size, scheduler.gamma) == (15, 0.1)
    assert configured["optimizer"].defaults["momentum"] == 0.9
