"""Experiment loggers: one (logger=tensorboard, csv, mlflow, wandb) or several at once
(logger=many), from conf/logger/. Metrics reach every one through Lightning; the report images and
the run's config reach each one in the form it supports.

Try it: python train.py logger=mlflow trainer.max_epochs=1
        mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from omegaconf import DictConfig
from PIL import Image

from mnist_lit import MnistLitError

# a run's results, logged beside its config
HPARAM_METRICS = ("test/acc", "test/loss", "val/acc_best")
# the CSV logger takes scalars only
IMAGE_LOGGERS = (TensorBoardLogger, MLFlowLogger, WandbLogger)


def build_loggers(cfg: DictConfig | None) -> list[Logger]:
    """The loggers that `cfg` (the config's `logger`) describes: one with a _target_, or a mapping
    of several."""
    if not cfg:
        return []
    return [_instantiate(one) for one in ([cfg] if "_target_" in cfg else cfg.values()) if one]


def _instantiate(cfg: DictConfig) -> Logger:
    try:
        return instantiate(cfg)
    except InstantiationException as err:
        # Lightning's loggers import their package when built
        if isinstance(err.__cause__, ImportError):
            name = cfg._target_.rsplit(".", 1)[-1]
            raise MnistLitError(
                f"{name} needs a package that is not installed ({err.__cause__}); "
                "pip install -e '.[mlflow,wandb]' adds both"
            ) from None
        raise


def takes_images(loggers: Sequence[Logger]) -> bool:
    """Whether any of `loggers` keeps images."""
    return any(isinstance(lg, IMAGE_LOGGERS) for lg in loggers)


def log_image(loggers: Sequence[Logger], key: str, image: Image.Image, step: int) -> None:
    """One report image (RGB) to every logger that keeps images: TensorBoard's images tab, an MLflow
    artifact under report/, W&B's media panel."""
    for lg in loggers:
        if isinstance(lg, TensorBoardLogger):
            # (3, H, W)
            lg.experiment.add_image(key, np.asarray(image).transpose(2, 0, 1), global_step=step)
        elif isinstance(lg, MLFlowLogger):
            lg.experiment.log_image(
                lg.run_id, image, artifact_file=f"report/{key.replace('/', '_')}.png"
            )
        elif isinstance(lg, WandbLogger):
            lg.log_image(key=key, images=[image], step=step)


def log_run_end(
    loggers: Sequence[Logger], params: dict[str, Any], metrics: dict[str, Any], dev_run: bool
) -> None:
    """The run's resolved config as hyperparameters, with its results beside them (TensorBoard's
    hparams tab), then close each logger. A fast_dev_run logs nothing while it runs (Lightning swaps
    its loggers for a dummy), so its results are logged here, once."""
    final = {k: metrics[k] for k in HPARAM_METRICS if k in metrics}
    for lg in loggers:
        if isinstance(lg, TensorBoardLogger):
            lg.log_hyperparams(params, {f"hp/{k}": v for k, v in final.items()})
        else:
            lg.log_hyperparams(params)
            if dev_run:
                lg.log_metrics(final, step=0)
        # the trainer closed its writers before this: flush and close the new ones
        lg.finalize("success")
        # Lightning leaves the W&B run open until the process exits
        if isinstance(lg, WandbLogger):
            lg.experiment.finish()


def where_to_look(loggers: Sequence[Logger]) -> list[str]:
    """A line per MLflow or W&B logger: the command that shows the run."""
    lines = []
    for lg in loggers:
        if isinstance(lg, MLFlowLogger):
            lines.append(f"MLflow:          mlflow ui --backend-store-uri {lg._tracking_uri}")
        elif isinstance(lg, WandbLogger) and lg.experiment.settings.mode == "offline":
            lines.append(f"W&B (offline):   wandb sync {Path(lg.experiment.dir).parent}")
    return lines
