"""The LightningModule: one shared step for train/val/test, torchmetrics per stage; generated non-digits taught as
an 11th class, and the temperature and rejection threshold fitted on the validation split at every validation.

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
from torchmetrics import CatMetric, MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError, MulticlassConfusionMatrix

from mnist_lit import NUM_CLASSES, negatives
from mnist_lit.batches import unnormalize
from mnist_lit.calibration import choose_threshold, fit_temperature, not_digit_probability
from mnist_lit.data import NORMALIZATIONS
from mnist_lit.models import build_net

STAGES = ("train", "val", "test")
DEFAULT_MEAN, DEFAULT_STD = NORMALIZATIONS["mnist"]
NOT_DIGIT = NUM_CLASSES  # the class index of the 11th output
BANK_SIZE = 4096  # negatives made once per fit; each training step draws from them
VAL_NEGATIVES = 1024  # a fixed set, made alike on every DDP rank, for choosing the rejection threshold
VAL_NEGATIVES_SEED = 20170706  # fixed apart from `seed`: every run chooses its threshold on the same pictures
OVERLAP_SHARE = 0.25  # of each step's negatives: two of the batch's own digits drawn over each other
STROKE_CHANGES = (-2, -1, -1, 1)  # canvas pixels (1/3 of a field pixel) off each side of a restroked digit's strokes
MIN_INK_KEPT = 0.3  # a digit thinned to less than this share of its ink is kept as it was
REFILL_STEPS = 32  # training steps' worth of negatives made at once
EVAL_CHUNK = 512  # validation negatives per forward pass
ECE_BINS = 15
WHOLE_RUN = ("total_steps", "T_max")  # scheduler arguments that span the run, filled in from the Trainer


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
        negatives: float = 0.0,
        **net: Any,
    ) -> None:
        super().__init__()
        # the network's 11th output exists exactly when negatives teach it; stored with the net's settings, so
        # that checkpoints.network rebuilds it without this class (checkpoints from before it have 10 outputs)
        net["not_digit"] = negatives > 0
        # logger=False: train.py logs the whole resolved config to TensorBoard instead
        self.save_hyperparameters(logger=False)
        self.net = build_net(arch, **net)
        # fitted at every validation, saved in every checkpoint (on_save_checkpoint): T divides the digit logits,
        # and "not_digit" is the probability above which a picture is rejected
        self.calibration: dict[str, float] = {"temperature": 1.0}
        self.bank: torch.Tensor | None = None
        self.pending: tuple[torch.Tensor, ...] | None = None
        self.val_negatives: torch.Tensor | None = None
        self.metrics = nn.ModuleDict()
        for stage in STAGES:
            self.metrics[f"{stage}_loss"] = MeanMetric()
            self.metrics[f"{stage}_acc"] = MulticlassAccuracy(NUM_CLASSES, average="micro")
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # kept in checkpoints, so a resumed run remembers its best
        self.test_confusion = MulticlassConfusionMatrix(NUM_CLASSES)  # per-class accuracy; the report draws it
        # the validation logits and labels of an epoch, gathered across DDP ranks, for the temperature fit
        self.val_logits, self.val_labels = CatMetric(nan_strategy="disable"), CatMetric(nan_strategy="disable")
        # before and after temperature scaling; the report draws both from their states
        self.test_ece_raw = MulticlassCalibrationError(NUM_CLASSES, n_bins=ECE_BINS)
        self.test_ece = MulticlassCalibrationError(NUM_CLASSES, n_bins=ECE_BINS)
        self.test_accept = MeanMetric()  # the share of test digits not rejected as "not a digit"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, 10) for normalized images (B, 1, 28, 28)."""
        return self.net(x)

    def _step(
        self, batch: tuple[torch.Tensor, torch.Tensor], stage: str, extra: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss (with its graph, for training) and the batch's digit logits (B, 10 or 11); updates the stage's
        metrics. `extra` non-digits (K, 1, 28, 28) go through the same pass, as class NOT_DIGIT."""
        x, y = batch
        target = y
        if extra is not None:
            x, target = torch.cat([x, extra]), torch.cat([y, y.new_full((len(extra),), NOT_DIGIT)])
        logits = self(x)
        loss = F.cross_entropy(logits, target)
        # weighted by batch size, so a short last batch counts for what it holds
        self.metrics[f"{stage}_loss"].update(loss.detach(), weight=len(target))
        digits = logits[: len(y)].detach()
        self.metrics[f"{stage}_acc"].update(digits[:, :NUM_CLASSES], y)  # which digit, of the pictures of digits
        return loss, digits

    def make_extra(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For the batch x (B, 1, 28, 28), y (B,): K = negatives * B normalized non-digits (pictures from the bank,
        and pairs of the batch's digits drawn over each other), and K digits redrawn with thinner or thicker
        strokes, with their labels, to stand in for K of the batch's. Without those, stroke width would be a cue:
        MNIST's strokes are even, scribbles' are not, and a thin-penned digit would be answered "not a digit".
        Both are made for REFILL_STEPS steps at a time: a few large tensor ops cost far less than many small ones."""
        k = max(1, round(self.hparams.negatives * len(x)))
        if self.pending is None or len(self.pending[0]) < k:
            if self.bank is None:  # once per process, on its device
                generator = torch.Generator().manual_seed(torch.initial_seed())
                self.bank = negatives.make(BANK_SIZE, generator, x.device)
            count = k * REFILL_STEPS
            pairs = round(count * OVERLAP_SHARE)
            drawn = self.bank[torch.randint(len(self.bank), (count - pairs,)).to(x.device)]
            mean, std = self.hparams.mean, self.hparams.std
            repeats = -(-count // len(x))
            # lifted once per batch digit, then repeated: lifting is per picture, so the copies come out the same
            digits = negatives.lift(unnormalize(x, mean, std).float()).repeat(repeats, 1, 1, 1)[:count]
            made = torch.cat([drawn, negatives.fit_field(negatives.overlaps(digits[:pairs]))])
            # the digits' own augmentation too (data.augment): resampling softens edges, and negatives without it
            # would be told apart by their crisper edges
            augment = getattr(getattr(self.trainer, "datamodule", None), "augment", None)
            if augment is not None:
                made = augment(made)
            change = torch.tensor(STROKE_CHANGES, device=x.device)[torch.randint(len(STROKE_CHANGES), (count,))]
            restroked = negatives.widen(digits, change)
            kept = restroked.sum((1, 2, 3)) >= MIN_INK_KEPT * digits.sum((1, 2, 3))  # thinning must not erase it
            restroked = negatives.fit_field(torch.where(kept.view(-1, 1, 1, 1), restroked, digits))
            order = torch.randperm(count).to(x.device)
            self.pending = (
                (made[order] - mean) / std,
                (restroked - mean) / std,
                y.repeat(repeats)[:count],
            )
        out = tuple(part[:k] for part in self.pending)
        self.pending = tuple(part[k:] for part in self.pending)
        return out[0].to(x.dtype), out[1].to(x.dtype), out[2]

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
        extra = None
        if self.hparams.negatives:
            x, y = batch
            extra, restroked, labels = self.make_extra(x, y)
            # both stand in for batch digits, so that a step costs what a plain one does: K restroked digits, B - 2K
            # of the batch's, K negatives; the shuffle leaves out different digits each epoch
            k = len(extra)
            batch = (torch.cat([restroked, x[2 * k :]]), torch.cat([labels, y[2 * k :]]))
        loss, _ = self._step(batch, "train", extra)
        # Lightning writes step values every `log_every_n_steps` only (so no host sync per step), but each
        # self.log() call still costs bookkeeping, a noticeable share of a small CNN's step on CPU: log only
        # on the steps it writes (global_step + 1: the step counter moves after this step's optimizer step)
        every = self.trainer.log_every_n_steps
        if self.trainer.fast_dev_run or (every and (self.global_step + 1) % every == 0):
            self.log("train/loss_step", loss, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        _, logits = self._step(batch, "val")
        self.val_logits.update(logits.float())
        self.val_labels.update(batch[1])

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Updates the test metrics; returns the predicted digits (B,), for callbacks such as the report."""
        _, logits = self._step(batch, "test")
        y, digit_logits = batch[1], logits[:, :NUM_CLASSES].float()
        preds = digit_logits.argmax(dim=1)
        self.test_confusion.update(preds, y)
        self.test_ece_raw.update(digit_logits.softmax(dim=1), y)
        self.test_ece.update((digit_logits / self.calibration["temperature"]).softmax(dim=1), y)
        if "not_digit" in self.calibration:  # chosen at validation: none with trainer.limit_val_batches=0
            self.test_accept.update((not_digit_probability(logits) <= self.calibration["not_digit"]).float())
        return preds

    def on_test_epoch_start(self) -> None:
        for metric in (self.test_confusion, self.test_ece_raw, self.test_ece, self.test_accept):
            metric.reset()

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        acc = self._log_epoch("val")
        logits, labels = self.val_logits.compute(), self.val_labels.compute()
        self.val_logits.reset()
        self.val_labels.reset()
        if self.trainer.sanity_checking:  # two batches of an untrained net are no "best"
            return
        self.val_acc_best.update(acc)
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)
        self.calibrate(logits, labels)

    def calibrate(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Fit the temperature to the validation digits' logits (N, 10 or 11) and, for a network with the 11th
        output, choose the rejection threshold on those digits and log how many generated validation negatives it
        rejects."""
        self.calibration["temperature"] = fit_temperature(logits[:, :NUM_CLASSES], labels)
        self.log("val/temperature", self.calibration["temperature"])
        if not self.hparams.negatives:
            return
        if self.val_negatives is None:
            generator = torch.Generator().manual_seed(VAL_NEGATIVES_SEED)
            made = negatives.make(VAL_NEGATIVES, generator, self.device)
            self.val_negatives = (made - self.hparams.mean) / self.hparams.std
        negative_logits = torch.cat([self(chunk) for chunk in self.val_negatives.split(EVAL_CHUNK)])
        digit_scores, negative_scores = not_digit_probability(logits), not_digit_probability(negative_logits)
        threshold = choose_threshold(digit_scores)
        self.calibration["not_digit"] = threshold
        self.log_dict(
            {
                "val/accept": (digit_scores <= threshold).float().mean(),
                "val/reject": (negative_scores > threshold).float().mean(),
            }
        )

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")
        self.log_dict({"test/ece_raw": self.test_ece_raw.compute(), "test/ece": self.test_ece.compute()})
        if "not_digit" in self.calibration:
            self.log("test/accept", self.test_accept.compute())
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
        given = make_scheduler.keywords if isinstance(make_scheduler, functools.partial) else {}
        # a whole-run schedule (OneCycleLR's total_steps, CosineAnnealingLR's T_max left unset): sized from the
        # trainer, stepped every batch
        length = next((k for k in WHOLE_RUN if k in inspect.signature(target).parameters and k not in given), None)
        if length is not None:
            steps = int(self.trainer.estimated_stepping_batches)
            scheduler = make_scheduler(optimizer=optimizer, **{length: steps})
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": make_scheduler(optimizer=optimizer)}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # partials and OmegaConf nodes would be pickled as objects; plain data keeps the file loadable with
        # torch.load(weights_only=True)
        checkpoint["hyper_parameters"] = {k: plain(v) for k, v in checkpoint["hyper_parameters"].items()}
        checkpoint["precision"] = str(self.trainer.precision)  # evaluate.py reproduces the test numbers with it
        checkpoint["calibration"] = dict(self.calibration)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.calibration.update(checkpoint.get("calibration", {}))  # none in checkpoints from before it: T = 1
