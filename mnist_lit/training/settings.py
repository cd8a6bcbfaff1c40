"""The LightningModule's settings on their two ways: from the config into an optimizer and a
scheduler sized for the run, and from the module into a checkpoint as plain data, which
torch.load(weights_only=True) reads.

Try it: python train.py optimizer=sgd trainer.max_epochs=1
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

# scheduler arguments that span the run, filled in from the Trainer
WHOLE_RUN = ("total_steps", "T_max")


def to_plain_data(value: Any) -> Any:
    """A hyperparameter as plain Python data: a functools.partial as the Hydra config that rebuilds
    it, an OmegaConf node (a list setting such as deep_cnn's `channels` arrives as a ListConfig) as
    lists and dicts."""
    if isinstance(value, functools.partial):
        target = f"{value.func.__module__}.{value.func.__qualname__}"
        return {"_target_": target, "_partial_": True, **to_plain_data(value.keywords)}
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, dict):
        return {k: to_plain_data(v) for k, v in value.items()}
    return value


def optimizers(
    params: Iterable[torch.nn.Parameter],
    make_optimizer: Callable[..., torch.optim.Optimizer] | Mapping | None,
    make_scheduler: Callable[..., Any] | Mapping | None,
    run_steps: Callable[[], int],
) -> Any:
    """What configure_optimizers returns: the optimizer, with its scheduler when there is one. A
    whole-run schedule (OneCycleLR's total_steps, CosineAnnealingLR's T_max left unset) is sized to
    `run_steps()` and stepped every batch; any other steps every epoch."""
    if make_optimizer is None:
        raise ValueError("MNISTLitModule needs an optimizer to train")
    # loaded from a checkpoint: a plain Hydra-style config
    if isinstance(make_optimizer, Mapping):
        make_optimizer, make_scheduler = instantiate(make_optimizer), instantiate(make_scheduler)
    optimizer = make_optimizer(params=params)
    if make_scheduler is None:
        return optimizer
    target = (
        make_scheduler.func if isinstance(make_scheduler, functools.partial) else make_scheduler
    )
    given = make_scheduler.keywords if isinstance(make_scheduler, functools.partial) else {}
    length = next(
        (k for k in WHOLE_RUN if k in inspect.signature(target).parameters and k not in given), None
    )
    if length is not None:
        scheduler = make_scheduler(optimizer=optimizer, **{length: run_steps()})
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
    return {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": make_scheduler(optimizer=optimizer)},
    }
