"""The LightningModule: one shared step for train/val/test, torchmetrics per stage, and the
temperature fitted on the validation split at every validation. With `negatives`, one component
(training/not_digit.py) also teaches "not a digit" as an 11th class and fits its threshold.

Try it: python train.py trainer.fast_dev_run=true
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import CatMetric, MaxMetric, MeanMetric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassCalibrationError,
    MulticlassConfusionMatrix,
)

from mnist_lit import NUM_CLASSES
from mnist_lit.data import NORMALIZATIONS
from mnist_lit.models import build_net, rebuild_critic
from mnist_lit.training.calibration import calibrate
from mnist_lit.training.negative_mixer import Augment, Batch
from mnist_lit.training.not_digit import NotDigitTraining
from mnist_lit.training.settings import optimizers, to_plain_data

STAGES = ("train", "val", "test")
DEFAULT_MEAN, DEFAULT_STD = NORMALIZATIONS["mnist"]
# the class index of the 11th output
NOT_DIGIT = NUM_CLASSES
ECE_BINS = 15


def stage_metrics() -> nn.ModuleDict:
    """Each stage's loss and digit accuracy: updated every step, computed once per epoch."""
    metrics = {}
    for stage in STAGES:
        metrics[f"{stage}_loss"] = MeanMetric()
        metrics[f"{stage}_acc"] = MulticlassAccuracy(NUM_CLASSES, average="micro")
    return nn.ModuleDict(metrics)


class MNISTLitModule(L.LightningModule):
    """Wraps a network from `mnist_lit.models` with its loss, metrics, optimizer and scheduler."""

    def __init__(
        self,
        arch: str = "cnn",
        optimizer: Callable[..., torch.optim.Optimizer] | Mapping | None = None,
        scheduler: Callable[..., Any] | Mapping | None = None,
        mean: float = DEFAULT_MEAN,
        std: float = DEFAULT_STD,
        negatives: float = 0.0,
        shape_critic: bool = True,
        augment: Augment | None = None,
        **net: Any,
    ) -> None:
        super().__init__()
        # the network's 11th output exists exactly when negatives teach it; stored with the net's
        # settings, so that models.rebuild rebuilds it without this class (checkpoints from before
        # it have 10 outputs)
        net["not_digit"] = negatives > 0
        # logger=False: train.py logs the whole resolved config instead; `augment` is the
        # datamodule's, a function rather than a setting
        self.save_hyperparameters(ignore=["augment"], logger=False)
        self.net = build_net(arch, **net)
        # fitted at every validation and saved in every checkpoint: T divides the digit logits;
        # with negatives, "not_digit" (the rejection threshold) and "distance" (the digits'
        # feature statistics) too. Plain tensors and floats, which load with weights_only=True
        self.calibration: dict[str, Any] = {"temperature": 1.0}
        self.metrics = stage_metrics()
        self.val_acc_best = MaxMetric()
        # kept in checkpoints, so that a resumed run remembers its best
        self.val_acc_best.persistent(True)
        # the validation logits and labels of an epoch, gathered across DDP ranks
        self.val_logits = CatMetric(nan_strategy="disable")
        self.val_labels = CatMetric(nan_strategy="disable")
        # per-class accuracy, and the calibration error before and after temperature scaling
        self.test_confusion = MulticlassConfusionMatrix(NUM_CLASSES)
        self.test_ece_raw = MulticlassCalibrationError(NUM_CLASSES, n_bins=ECE_BINS)
        self.test_ece = MulticlassCalibrationError(NUM_CLASSES, n_bins=ECE_BINS)
        # everything "not a digit" needs; None on the reference path (negatives=0)
        self.not_digit = None
        if negatives:
            self.not_digit = NotDigitTraining(negatives, mean, std, augment, shape_critic)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, 10), or (B, 11) with negatives, for normalized images (B, 1, 28, 28)."""
        return self.net(x)

    def _step(
        self, batch: Batch, stage: str, negatives: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The loss (with its graph, for training), the digits' logits (B, 10 or 11) and their last
        hidden layer (B, F); updates the stage's metrics. `negatives` (K, 1, 28, 28) go through the
        same pass, as class NOT_DIGIT."""
        x, y = batch
        target = y
        if negatives is not None:
            x = torch.cat([x, negatives])
            target = torch.cat([y, y.new_full((len(negatives),), NOT_DIGIT)])
        hidden = self.net.embed(x)
        logits = self.net.head(hidden)
        loss = F.cross_entropy(logits, target)
        # weighted by batch size, so that a short last batch counts for what it holds
        self.metrics[f"{stage}_loss"].update(loss.detach(), weight=len(target))
        digits = logits[: len(y)].detach()
        # which digit, of the pictures of digits
        self.metrics[f"{stage}_acc"].update(digits[:, :NUM_CLASSES], y)
        return loss, digits, hidden[: len(y)].detach()

    def epoch_metrics(self, stage: str) -> dict[str, torch.Tensor]:
        """The stage's loss and accuracy over the epoch so far (cached by torchmetrics)."""
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

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        negatives = None
        if self.not_digit is not None:
            batch, negatives = self.not_digit.mix_batch(batch)
        loss, _, _ = self._step(batch, "train", negatives)
        # Lightning writes step values every `log_every_n_steps` only, but each self.log() call
        # still costs bookkeeping, a noticeable share of a small CNN's step on CPU: log only on the
        # steps it writes (global_step + 1: the counter moves after this step's optimizer step)
        every = self.trainer.log_every_n_steps
        if self.trainer.fast_dev_run or (every and (self.global_step + 1) % every == 0):
            self.log("train/loss_step", loss, on_step=True, on_epoch=False)
        if self.not_digit is None:
            return loss
        # the critic's parameters are its own: one backward pass of the sum trains each on its loss
        return loss + self.not_digit.critic_loss(batch, negatives)

    def on_validation_epoch_start(self) -> None:
        if self.not_digit is not None:
            self.not_digit.start_validation()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        _, logits, hidden = self._step(batch, "val")
        self.val_logits.update(logits.float())
        self.val_labels.update(batch[1])
        if self.not_digit is not None:
            self.not_digit.update_validation(batch[0], hidden)

    def test_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        """Updates the test metrics; returns the predicted digits (B,), for callbacks such as the
        report."""
        _, logits, hidden = self._step(batch, "test")
        y, digit_logits = batch[1], logits[:, :NUM_CLASSES].float()
        preds = digit_logits.argmax(dim=1)
        self.test_confusion.update(preds, y)
        self.test_ece_raw.update(digit_logits.softmax(dim=1), y)
        temperature = self.calibration["temperature"]
        self.test_ece.update((digit_logits / temperature).softmax(dim=1), y)
        if self.not_digit is not None:
            self.not_digit.update_test(batch[0], logits, hidden, self.calibration)
        return preds

    def on_test_epoch_start(self) -> None:
        for metric in (self.test_confusion, self.test_ece_raw, self.test_ece):
            metric.reset()
        if self.not_digit is not None:
            self.not_digit.start_test()

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        acc = self._log_epoch("val")
        logits, labels = self.val_logits.compute(), self.val_labels.compute()
        self.val_logits.reset()
        self.val_labels.reset()
        # two batches of an untrained net are no "best"
        if self.trainer.sanity_checking:
            return
        self.val_acc_best.update(acc)
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)
        if self.not_digit is None:
            fitted, logged = calibrate(logits, labels)
        else:
            fitted, logged = self.not_digit.fit(self.net, logits, labels)
        self.calibration.update(fitted)
        self.log_dict(logged)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")
        self.log("test/ece_raw", self.test_ece_raw.compute())
        self.log("test/ece", self.test_ece.compute())
        if self.not_digit is not None:
            self.log_dict(self.not_digit.test_metrics(self.calibration))
        confusion = self.test_confusion.compute().cpu()
        per_class = confusion.diag() / confusion.sum(dim=1).clamp(min=1)
        self.log_dict({f"test/acc_class_{k}": acc for k, acc in enumerate(per_class.tolist())})

    def configure_optimizers(self) -> Any:
        # a whole-run schedule's length, known once the Trainer is attached
        def run_steps() -> int:
            return int(self.trainer.estimated_stepping_batches)

        return optimizers(
            self.parameters(), self.hparams.optimizer, self.hparams.scheduler, run_steps
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # partials and OmegaConf nodes would be pickled as objects; plain data keeps the file
        # loadable with torch.load(weights_only=True)
        hparams = checkpoint["hyper_parameters"]
        checkpoint["hyper_parameters"] = {k: to_plain_data(v) for k, v in hparams.items()}
        # evaluate.py reproduces the test numbers with it
        checkpoint["precision"] = str(self.trainer.precision)
        checkpoint["calibration"] = dict(self.calibration)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # none in checkpoints from before it: T = 1
        self.calibration.update(checkpoint.get("calibration", {}))
        # Lightning loads the weights after this hook: a checkpoint from before the shape critic
        # (models.rebuild_critic finds none) loads, and answers, without one
        if self.not_digit is not None and rebuild_critic(checkpoint) is None:
            self.not_digit.critic = None
