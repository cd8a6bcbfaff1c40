"""Build Lightning's Trainer from the `trainer` config; settings this machine cannot run are
one-line errors that say what to use instead, not Lightning's exception inside Hydra's report.

Try it: python train.py trainer=gpu   (on a machine without a GPU)
"""

from __future__ import annotations

import os
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig

from mnist_lit import MnistLitError, devices
from mnist_lit.training.perf import AUTO, AUTO_BF16, resolve_precision

PRECISIONS = (
    AUTO,
    AUTO_BF16,
    "32-true",
    "16-mixed",
    "bf16-mixed",
    "16-true",
    "bf16-true",
    "64-true",
)


def check_cpu_processes(cfg: DictConfig) -> None:
    """Refuse more CPU training processes than the machine has cores: Lightning would start them
    all, each slower than one alone."""
    count, cores = str(cfg.devices), os.cpu_count() or 1
    if (
        devices.on_cpu(str(cfg.accelerator), torch.cuda.is_available)
        and count.isdigit()
        and int(count) > cores
    ):
        raise MnistLitError(
            f"trainer.devices={count} asks for {count} CPU processes, but this machine has {cores} "
            "cores; "
            f"use trainer.devices={cores} or fewer"
        )


def explain(err: BaseException, cfg: DictConfig) -> str:
    """One line for a Trainer setting that Lightning refused, with what to use instead."""
    text = " ".join(str(err).split())
    if str(cfg.accelerator) in devices.GPUS and not torch.cuda.is_available():
        instead = "trainer=ddp_cpu" if "ddp" in str(cfg.get("strategy", "")) else "trainer=cpu"
        return (
            f"trainer.accelerator={cfg.accelerator} needs a GPU, and torch finds none here; "
            f"use {instead}"
        )
    # "You requested gpu: [0, 1] But your machine only has: [0]"
    if "only has" in text and torch.cuda.is_available():
        count = torch.cuda.device_count()
        return (
            f"trainer.devices={cfg.devices}, but this machine has {count} GPU(s); "
            f"use trainer.devices={count}"
        )
    if "Precision" in text:
        return (
            f"trainer.precision={cfg.precision} is not a precision Lightning knows; "
            f"use one of {', '.join(PRECISIONS)}"
        )
    return f"the trainer settings do not work on this machine: {text}"


def build_trainer(cfg: DictConfig, **kwargs: Any) -> L.Trainer:
    """The Trainer of the `trainer` config (precision `auto` resolved), with kwargs such as
    callbacks and logger."""
    check_cpu_processes(cfg)
    precision = resolve_precision(cfg.precision, cfg.accelerator)
    try:
        return instantiate(cfg, precision=precision, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__ or err
        # what Lightning raises for a setting it cannot honour; anything else is a bug and keeps its
        # traceback
        if isinstance(cause, (MisconfigurationException, ValueError, ImportError)):
            raise MnistLitError(explain(cause, cfg)) from err
        raise
