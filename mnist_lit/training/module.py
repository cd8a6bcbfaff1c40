"""The LightningModule: one shared step for train/val/test, torchmetrics per stage; generated non-digits taught as
an 11th class, and the temperature, the rejection threshold and the digits' feature statistics fitted on the
validation split at every validation.

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
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError, MulticlassConfusionMatrix

from mnist_lit import NUM_CLASSES
from mnist_lit.data import NORMALIZATIONS
from mnist_lit.models import build_net, feature_distance, not_digit_probability, with_distance
from mnist_lit.training.calibration import calibrate
from mnist_lit.training.curriculum import Batch, Curriculum
from mnist_lit.training.settings import optimizers, plain

STAGES = ("train", "val", "test")
DEFAULT_MEAN, DEFAULT_STD = NORMALIZATIONS["mnist"]
NOT_DIGIT = NUM_CLASSES  # the class index of the 11th output
EVAL_CHUNK = 512  # validation negatives per forward pass
ECE_BINS = 15


def stage_metrics() -> nn.ModuleDict:
    """Each stage's loss and digit accuracy: updated every step, computed once per epoch."""
    made = {"loss": MeanMetric, "acc": lambda: MulticlassAccuracy(NUM_CLASSES, average="micro")}
    return nn.ModuleDict({f"{stage}_{name}": make() for stage in STAGES for name, make in made.items()})


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
        **net: Any,
    ) -> None:
        super().__init__()
        # the network's 11th output exists exactly when negatives teach it; stored with the net's settings, so
        # that models.rebuild rebuilds it without this class (checkpoints from before it have 10 outputs)
        net["not_digit"] = negatives > 0
        # logger=False: train.py logs the whole resolved config to TensorBoard instead
        self.save_hyperparameters(logger=False)
        self.net = build_net(arch, **net)
        # fitted at every validation, saved in every checkpoint (on_save_checkpoint): T divides the digit logits,
        # "not_digit" is the probability above which a picture is rejected, and "distance" holds the digits'
        # feature statistics (plain tensors and a float: they load with weights_only=True)
        self.calibration: dict[str, Any] = {"temperature": 1.0}
        self.curriculum = Curriculum(negatives, mean, std) if negatives else None
        self.metrics = stage_metrics()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # kept in checkpoints, so a resumed run remembers its best
        self.test_confusion = MulticlassConfusionMatrix(NUM_CLASSES)  # per-class accuracy; the report draws it
        # the validation logits and labels of an epoch, gathered across DDP ranks, for the temperature fit
        self.val_logits, self.val_labels = CatMetric(nan_strategy="disable"), CatMetric(nan_strategy="disable")
        self.val_hidden = CatMetric(nan_strategy="disable")  # their last hidden layer, for the feature distance
        # before and after temperature scaling; the report draws both from their states
        self.test_ece_raw = MulticlassCalibrationError(NUM_CLASSES, n_bins=ECE_BINS)
        self.test_ece = MulticlassCalibrationError(NUM_CLASSES, n_bins=ECE_BINS)
        self.test_accept = MeanMetric()  # the share of test digits not rejected as "not a digit"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, 10) for normalized images (B, 1, 28, 28)."""
        return self.net(x)

    def _step(
        self, batch: Batch, stage: str, extra: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The loss (with its graph, for training), the batch's digit logits (B, 10 or 11) and its last hidden
        layer (B, F); updates the stage's metrics. `extra` non-digits (K, 1, 28, 28) go through the same pass, as
        class NOT_DIGIT."""
        x, y = batch
        target = y
        if extra is not None:
            x, target = torch.cat([x, extra]), torch.cat([y, y.new_full((len(extra),), NOT_DIGIT)])
        hidden = self.net.embed(x)
        logits = self.net.head(hidden)
        loss = F.cross_entropy(logits, target)
        # weighted by batch size, so a short last batch counts for what it holds
        self.metrics[f"{stage}_loss"].update(loss.detach(), weight=len(target))
        digits = logits[: len(y)].detach()
        self.metrics[f"{stage}_acc"].update(digits[:, :NUM_CLASSES], y)  # which digit, of the pictures of digits
        return loss, digits, hidden[: len(y)].detach()

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

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        extra = None
        if self.curriculum is not None:
            # the digits' own augmentation (data.augment) goes onto the negatives too
            augment = getattr(getattr(self.trainer, "datamodule", None), "augment", None)
            batch, extra = self.curriculum.rewire(batch, augment)
        loss, _, _ = self._step(batch, "train", extra)
        # Lightning writes step values every `log_every_n_steps` only (so no host sync per step), but each
        # self.log() call still costs bookkeeping, a noticeable share of a small CNN's step on CPU: log only
        # on the steps it writes (global_step + 1: the step counter moves after this step's optimizer step)
        every = self.trainer.log_every_n_steps
        if self.trainer.fast_dev_run or (every and (self.global_step + 1) % every == 0):
            self.log("train/loss_step", loss, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        _, logits, hidden = self._step(batch, "val")
        self.val_logits.update(logits.float())
        self.val_labels.update(batch[1])
        if self.curriculum is not None:
            self.val_hidden.update(hidden.float())

    def test_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        """Updates the test metrics; returns the predicted digits (B,), for callbacks such as the report."""
        _, logits, hidden = self._step(batch, "test")
        y, digit_logits = batch[1], logits[:, :NUM_CLASSES].float()
        preds = digit_logits.argmax(dim=1)
        self.test_confusion.update(preds, y)
        self.test_ece_raw.update(digit_logits.softmax(dim=1), y)
        self.test_ece.update((digit_logits / self.calibration["temperature"]).softmax(dim=1), y)
        if "not_digit" in self.calibration:  # chosen at validation: none with trainer.limit_val_batches=0
            self.test_accept.update((self.no_digit(logits, hidden) <= self.calibration["not_digit"]).float())
        return preds

    def no_digit(self, logits: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """(B,) the probability of no digit, as predict.py computes it: the 11th output's, with the feature
        distance folded in once it has been fitted."""
        scores = not_digit_probability(logits)
        fitted = self.calibration.get("distance")
        if not fitted:
            return scores
        distance = feature_distance(hidden.float(), fitted["means"].to(hidden), fitted["precision"].to(hidden))
        return with_distance(scores, distance, fitted["limit"], self.calibration["not_digit"])

    def on_test_epoch_start(self) -> None:
        for metric in (self.test_confusion, self.test_ece_raw, self.test_ece, self.test_accept):
            metric.reset()

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        acc = self._log_epoch("val")
        logits, labels = self.val_logits.compute(), self.val_labels.compute()
        hidden = self.val_hidden.compute() if self.curriculum is not None else None
        for metric in (self.val_logits, self.val_labels, self.val_hidden):
            metric.reset()
        if self.trainer.sanity_checking:  # two batches of an untrained net are no "best"
            return
        self.val_acc_best.update(acc)
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)
        self.calibrate(logits, labels, hidden)

    def calibrate(self, logits: torch.Tensor, labels: torch.Tensor, hidden: torch.Tensor | None = None) -> None:
        """Fit the calibration to the validation digits' logits (N, 10 or 11), labels and last hidden layer (N, F),
        and log it."""
        negative_logits = None
        if self.curriculum is not None:
            made = self.curriculum.validation_negatives(self.device)
            negative_logits = torch.cat([self(chunk) for chunk in made.split(EVAL_CHUNK)])
        fitted, logged = calibrate(logits, labels, negative_logits, hidden)
        self.calibration.update(fitted)
        self.log_dict(logged)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")
        self.log_dict({"test/ece_raw": self.test_ece_raw.compute(), "test/ece": self.test_ece.compute()})
        if "not_digit" in self.calibration:
            self.log("test/accept", self.test_accept.compute())
        confusion = self.test_confusion.compute().cpu()
        per_class = confusion.diag() / confusion.sum(dim=1).clamp(min=1)
        self.log_dict({f"test/acc_class_{k}": acc for k, acc in enumerate(per_class.tolist())})

    def configure_optimizers(self) -> Any:
        steps = lambda: int(self.trainer.estimated_stepping_batches)  # noqa: E731  (a whole-run schedule's length)
        return optimizers(self.parameters(), self.hparams.optimizer, self.hparams.scheduler, steps)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # partials and OmegaConf nodes would be pickled as objects; plain data keeps the file loadable with
        # torch.load(weights_only=True)
        checkpoint["hyper_parameters"] = {k: plain(v) for k, v in checkpoint["hyper_parameters"].items()}
        checkpoint["precision"] = str(self.trainer.precision)  # evaluate.py reproduces the test numbers with it
        checkpoint["calibration"] = dict(self.calibration)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.calibration.update(checkpoint.get("calibration", {}))  # none in checkpoints from before it: T = 1
