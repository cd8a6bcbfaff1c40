"""The LightningModule: one shared step for train/val/test, torchmetrics per stage.

Try it: python train.py trainer.fast_dev_run=true
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from mnist_lit import NUM_CLASSES
from mnist_lit.data import NORMALIZATIONS
from mnist_lit.models import build_net

STAGES = ("train", "val", "test")
DEFAULT_MEAN, DEFAULT_STD = NORMALIZATIONS["mnist"]


def plain(value: Any) -> Any:
    """A hyperparameter as plain Python data: a functools.partial as the Hydra config that rebuilds it, an OmegaConf
    node (a list setting such as deep_cnn's `channels` arrives as a ListConfig) as lists and dicts."""
    if isinstance(value, functools.partial):
        target = f"{value.func.__module__}.{value.func.__qualname__}"
        return {"_target_": target, "_partial_": True, **plain(value.keywords)}
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


class MNISTLitModule(L.LightningModule):
    """Wraps a network from `mnist_lit.models` with its loss, metrics, optimizer and scheduler."""

    def __init__(
        self,
        arch: str = "cnn",
        optimizer: Callable[..., torch.optim.Optimizer] | Mapping | None = None,
        scheduler: Callable[..., Any] | Mapping | None = None,
        mean: float = DEFAULT_MEAN,
        std: float = DEFAULT_STD,
        **net: Any,
    ) -> None:
        super().__init__()
        # logger=False: train.py logs the whole resolved config to TensorBoard instead
        self.save_hyperparameters(logger=False)
        self.net = build_net(arch, **net)
        self.metrics = nn.ModuleDict()
        for stage in STAGES:
            self.metrics[f"{stage}_loss"] = MeanMetric()
            self.metrics[f"{stage}_acc"] = MulticlassAccuracy(NUM_CLASSES, average="micro")
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # kept in checkpoints, so a resumed run remembers its best
        self.test_confusion = MulticlassConfusionMatrix(NUM_CLASSES)  # per-class accuracy; the report draws it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, 10) for normalized images (B, 1, 28, 28)."""
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss (with its graph, for training) and the logits (B, 10) of one batch; updates the stage's metrics."""
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        # weighted by batch size, so a short last batch counts for what it holds
        self.metrics[f"{stage}_loss"].update(loss.detach(), weight=len(y))
        self.metrics[f"{stage}_acc"].update(logits.detach(), y)
        return loss, logits.detach()

    def epoch_metrics(self, stage: str) -> dict[str, torch.Tensor]:
        """The stage's loss and accuracy over the epoch so far (torchmetrics caches the result until reset)."""
        return {
            f"{stage}/loss": self.metrics[f"{stage}_loss"].compute(),
            f"{stage}/acc": self.metrics[f"{stage}_acc"].compute(),
        }

    def _log_epoch(self, stage: str) -> torch.Tensor:
        metrics = self.epoch_metrics(stage)
        self.log_dict(metrics, prog_bar=stage != "train")
        self.metrics[f"{stage}_loss"].reset()
        self.metrics[f"{stage}_acc"].reset()
        return metrics[f"{stage}/acc"]

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _ = self._step(batch, "train")
        # Lightning writes step values every `log_every_n_steps` only (so no host sync per step), but each
        # self.log() call still costs bookkeeping, a noticeable share of a small CNN's step on CPU: log only
        # on the steps it writes (global_step + 1: the step counter moves after this step's optimizer step)
        every = self.trainer.log_every_n_steps
        if self.trainer.fast_dev_run or (every and (self.global_step + 1) % every == 0):
            self.log("train/loss_step", loss, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Updates the test metrics; returns the predicted digits (B,), for callbacks such as the report."""
        _, logits = self._step(batch, "test")
        preds = logits.argmax(dim=1)
        self.test_confusion.update(preds, batch[1])
        return preds

    def on_test_epoch_start(self) -> None:
        self.test_confusion.reset()

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        acc = self._log_epoch("val")
        if self.trainer.sanity_checking:  # two batches of an untrained net are no "best"
            return
        self.val_acc_best.update(acc)
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")
        confusion = self.test_confusion.compute().cpu()
        per_class = confusion.diag() / confusion.sum(dim=1).clamp(min=1)
        self.log_dict({f"test/acc_class_{k}": acc for k, acc in enumerate(per_class.tolist())})

    def configure_optimizers(self) -> Any:
        make_optimizer, make_scheduler = self.hparams.optimizer, self.hparams.scheduler
        if make_optimizer is None:
            raise ValueError("MNISTLitModule needs an optimizer to train")
        if isinstance(make_optimizer, Mapping):  # loaded from a checkpoint: a plain Hydra-style config
            make_optimizer, make_scheduler = instantiate(make_optimizer), instantiate(make_scheduler)
        optimizer = make_optimizer(params=self.parameters())
        if make_scheduler is None:
            return optimizer
        target = make_scheduler.func if isinstance(make_scheduler, functools.partial) else make_scheduler
        if "total_steps" in inspect.signature(target).parameters:
            # a whole-run schedule (OneCycleLR): sized from the trainer, stepped every batch
            scheduler = make_scheduler(optimizer=optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": make_scheduler(optimizer=optimizer)}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # partials and OmegaConf nodes would be pickled as objects; plain data keeps the file loadable with
        # torch.load(weights_only=True)
        checkpoint["hyper_parameters"] = {k: plain(v) for k, v in checkpoint["hyper_parameters"].items()}
        checkpoint["precision"] = str(self.trainer.precision)  # evaluate.py reproduces the test numbers with it
