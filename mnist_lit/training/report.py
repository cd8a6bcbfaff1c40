"""What a run shows besides scalars, kept as it trains and tests: the epoch curves, the
misclassified test digits, the confusion matrix and the reliability diagram; in the loggers that
keep images (mnist_lit.training.loggers), and as files in <run dir>/report/. The pictures are drawn
by mnist_lit.training.figures.

Try it: python train.py trainer.max_epochs=2 && ls outputs/runs/*/report
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torchmetrics.utilities.data import dim_zero_cat

from mnist_lit import IMAGE_SIZE
from mnist_lit.data.batches import unnormalize
from mnist_lit.training.figures import curves_image, digit_grid, write_test_report
from mnist_lit.training.loggers import log_image, takes_images

# digits kept for the misclassified grid
MAX_MISCLASSIFIED = 64


class RunReport(Callback):
    """Keeps what the report shows (the epoch curves, the misclassified test digits, the confusion
    matrix), logs digit grids and figures to the loggers, and writes the report files at the end of
    fit and test."""

    def __init__(self, dirpath: str | os.PathLike, grid_size: int = 64) -> None:
        self.dirpath, self.grid_size = Path(dirpath), grid_size
        self.batch_logged = False
        # epoch -> epoch metrics, for the curves
        self.history: dict[int, dict[str, float]] = {}
        # the last test's confusion matrix and misclassified digits
        self.test_report: dict[str, Any] | None = None
        self._misclassified: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def state_dict(self) -> dict[str, Any]:
        """What checkpoints keep of the report: the history, so that a resumed run's curves start at
        epoch 1."""
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take the history back from a checkpoint being resumed."""
        self.history = {int(k): dict(v) for k, v in state_dict.get("history", {}).items()}

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # every training step passes here: return before any other work
        if self.batch_logged:
            return
        if not takes_images(trainer.loggers):
            return
        # one batch, at the start: the digits exactly as the network receives them
        self.batch_logged = True
        x, y = batch
        # (B, 28, 28)
        shown = unnormalize(x[: self.grid_size, 0], pl_module.hparams.mean, pl_module.hparams.std)
        grid = digit_grid(shown, [f"label {int(t)}" for t in y[: self.grid_size]])
        log_image(trainer.loggers, "train/batch", grid, trainer.global_step)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after the module's on_validation_epoch_end: this epoch's val metrics are logged
        # two batches of an untrained net are no point on the curve
        if not trainer.sanity_checking:
            self._record(
                trainer.current_epoch,
                {k: trainer.callback_metrics[k] for k in ("val/loss", "val/acc")},
            )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # before the module's own hook, which logs and resets them: read the epoch's train metrics
        # here
        self._record(trainer.current_epoch, pl_module.epoch_metrics("train"))

    def _record(self, epoch: int, metrics: dict[str, torch.Tensor]) -> None:
        self.history.setdefault(epoch, {}).update({k: float(v) for k, v in metrics.items()})

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and self.history:
            self.dirpath.mkdir(parents=True, exist_ok=True)
            curves_image(self.history).save(self.dirpath / "curves.png")

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._misclassified = []

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        x, y = batch
        if sum(len(m[0]) for m in self._misclassified) >= MAX_MISCLASSIFIED:
            # the grid is full: no host sync for the remaining batches
            return
        # outputs: the predicted digits (B,) that the module's test_step returns
        wrong = outputs != y
        if wrong.any():
            # (b, 28, 28)
            shown = unnormalize(x[wrong, 0], pl_module.hparams.mean, pl_module.hparams.std)
            self._misclassified.append((shown.cpu(), outputs[wrong].cpu(), y[wrong].cpu()))

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        empty = [torch.zeros(0, IMAGE_SIZE, IMAGE_SIZE), torch.zeros(0), torch.zeros(0)]
        parts = [torch.cat(p) for p in zip(*self._misclassified)] or empty
        images, preds, trues = (p[:MAX_MISCLASSIFIED] for p in parts)
        # computed (and synced across DDP ranks) by the module at the epoch's end; compute() returns
        # that result
        confusion = pl_module.test_confusion.compute().cpu().numpy()
        curves = {
            name: (
                dim_zero_cat(metric.confidences),
                dim_zero_cat(metric.accuracies),
                float(metric.compute()),
            )
            for name, metric in (
                ("raw", pl_module.test_ece_raw),
                ("temperature-scaled", pl_module.test_ece),
            )
        }
        self.test_report = {
            "confusion": confusion,
            "misclassified": (images, preds.long(), trues.long()),
            "reliability": curves,
        }
        if not trainer.is_global_zero:
            return
        figures = write_test_report(self.dirpath, self.test_report)
        for name, img in figures.items():
            log_image(trainer.loggers, f"test/{name}", img, trainer.global_step)
