"""What a run shows besides scalars: digit grids, curves, the confusion matrix, per-class accuracy, the reliability
diagram; in the loggers that keep images (mnist_lit.loggers), and as files in <run dir>/report/. Figures are drawn
with matplotlib's object API (no pyplot, no display).

Try it: python train.py trainer.max_epochs=2 && ls outputs/runs/*/report
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from PIL import Image, ImageDraw
from torchmetrics.utilities.data import dim_zero_cat

from mnist_lit import IMAGE_SIZE
from mnist_lit.batches import unnormalize
from mnist_lit.calibration import reliability
from mnist_lit.loggers import log_image, takes_images

GRID_COLS = 16
TILE_SCALE = 3  # each 28x28 digit is drawn 84x84
CAPTION_H = 14  # px under each tile
MAX_MISCLASSIFIED = 64  # digits kept for the misclassified grid


def digit_grid(images: torch.Tensor, captions: list[str], cols: int = GRID_COLS) -> Image.Image:
    """Tiles of (N, 28, 28) images in [0, 1], each with its caption underneath, as one RGB picture."""
    n = len(images)
    cols = max(1, min(cols, n))
    rows = max(1, -(-n // cols))
    side = IMAGE_SIZE * TILE_SCALE
    grid = Image.new("RGB", (cols * side, rows * (side + CAPTION_H)), "white")
    draw = ImageDraw.Draw(grid)
    pixels = (images.float().clamp(0, 1) * 255).byte().cpu().numpy()
    for i, (img, caption) in enumerate(zip(pixels, captions)):
        x, y = (i % cols) * side, (i // cols) * (side + CAPTION_H)
        grid.paste(Image.fromarray(img).resize((side, side), Image.Resampling.NEAREST), (x, y))
        draw.text((x + 2, y + side + 1), caption, fill="black")
    return grid


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _to_image(fig) -> Image.Image:
    fig.canvas.draw()
    return Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())


def curves_image(history: dict[int, dict[str, float]]) -> Image.Image:
    """Train and val loss and accuracy per epoch."""
    fig = _figure(10, 4)
    epochs = sorted(history)
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "acc")):
        for stage in ("train", "val"):
            points = [(e + 1, history[e][f"{stage}/{metric}"]) for e in epochs if f"{stage}/{metric}" in history[e]]
            if points:
                ax.plot(*zip(*points), marker="o", label=stage)
        ax.set_xlabel("epoch")
        ax.set_title("accuracy" if metric == "acc" else "loss")
        ax.grid(alpha=0.3)
        ax.legend()
    return _to_image(fig)


def confusion_image(confusion: np.ndarray) -> Image.Image:
    """The 10x10 confusion matrix as a heatmap with counts (rows: true digit, columns: predicted)."""
    fig = _figure(6.5, 5.5)
    ax = fig.subplots()
    # log scale: the diagonal holds ~1000 per class, the mistakes a handful; both must stay readable
    shown = ax.imshow(np.log1p(confusion), cmap="Blues")
    for (true, pred), count in np.ndenumerate(confusion):
        if count:
            colour = "white" if confusion[true, pred] > confusion.max() / 3 else "black"
            ax.text(pred, true, str(count), ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion matrix ({int(confusion.trace())}/{int(confusion.sum())} correct)")
    fig.colorbar(shown, ax=ax, label="log(1 + count)")
    return _to_image(fig)


def reliability_image(curves: dict[str, tuple[torch.Tensor, torch.Tensor, float]]) -> Image.Image:
    """Accuracy against confidence per confidence bin, one curve per name -> (confidences, correct, ECE); a
    calibrated model lies on the diagonal. Beside it, how many test digits each bin holds."""
    fig = _figure(10, 4.5)
    diagram, counts = fig.subplots(1, 2)
    diagram.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    for name, (confidences, correct, ece) in curves.items():
        rows = reliability(confidences, correct)
        diagram.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], marker="o",
                     label=f"{name} (ECE {ece:.4f})")  # fmt: skip
        counts.plot([r["confidence"] for r in rows], [r["count"] for r in rows], marker="o", label=name)
    diagram.set_xlabel("confidence (mean of the bin)")
    diagram.set_ylabel("accuracy")
    diagram.set_title("reliability")
    counts.set_yscale("log")  # nearly every digit sits in the top bin; the rest must stay visible
    counts.set_xlabel("confidence (mean of the bin)")
    counts.set_title("test digits per bin")
    for ax in (diagram, counts):
        ax.grid(alpha=0.3)
        ax.legend()
    return _to_image(fig)


def per_class_rows(confusion: np.ndarray) -> list[dict[str, Any]]:
    """Per digit: how many test images, how many right, the accuracy."""
    support = confusion.sum(axis=1)
    return [
        {"digit": k, "support": int(support[k]), "correct": int(confusion[k, k]),
         "accuracy": float(confusion[k, k] / support[k]) if support[k] else float("nan")}
        for k in range(len(confusion))
    ]  # fmt: skip


def write_test_report(out_dir: str | os.PathLike, test: dict[str, Any]) -> dict[str, Image.Image]:
    """confusion_matrix.png, misclassified.png, reliability.png and per_class.csv from RunReport's `test_report`;
    returns the pictures by name, so that they can also go to the loggers without being drawn twice."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "confusion_matrix": confusion_image(test["confusion"]),
        "misclassified": misclassified_image(test),
        "reliability": reliability_image(test["reliability"]),
    }
    for name, img in figures.items():
        img.save(out / f"{name}.png")
    with open(out / "per_class.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["digit", "support", "correct", "accuracy"])
        writer.writeheader()
        writer.writerows(per_class_rows(test["confusion"]))
    return figures


def misclassified_image(test: dict[str, Any]) -> Image.Image:
    """The misclassified test digits, captioned 'pred P / true T'."""
    images, preds, trues = test["misclassified"]
    if len(images) == 0:
        return digit_grid(torch.zeros(1, IMAGE_SIZE, IMAGE_SIZE), ["none misclassified"])
    return digit_grid(images, [f"pred {p} / true {t}" for p, t in zip(preds.tolist(), trues.tolist())], cols=8)


class RunReport(Callback):
    """Keeps what the report shows (the epoch curves, the misclassified test digits, the confusion matrix), logs
    digit grids and figures to the loggers, and writes the report files at the end of fit and test."""

    def __init__(self, dirpath: str | os.PathLike, grid_size: int = 64) -> None:
        self.dirpath, self.grid_size = Path(dirpath), grid_size
        self.batch_logged = False
        self.history: dict[int, dict[str, float]] = {}  # epoch -> epoch metrics, for the curves
        self.test_report: dict[str, Any] | None = None  # the last test's confusion matrix and misclassified digits
        self._misclassified: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def state_dict(self) -> dict[str, Any]:
        """What checkpoints keep of the report: the history, so that a resumed run's curves start at epoch 1."""
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take the history back from a checkpoint being resumed."""
        self.history = {int(k): dict(v) for k, v in state_dict.get("history", {}).items()}

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.batch_logged:  # every training step passes here: return before any other work
            return
        if not takes_images(trainer.loggers):
            return
        self.batch_logged = True  # one batch, at the start: the digits exactly as the network receives them
        x, y = batch
        shown = unnormalize(x[: self.grid_size, 0], pl_module.hparams.mean, pl_module.hparams.std)  # (B, 28, 28)
        grid = digit_grid(shown, [f"label {int(t)}" for t in y[: self.grid_size]])
        log_image(trainer.loggers, "train/batch", grid, trainer.global_step)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after the module's on_validation_epoch_end: this epoch's val metrics are logged
        if not trainer.sanity_checking:  # two batches of an untrained net are no point on the curve
            self._record(trainer.current_epoch, {k: trainer.callback_metrics[k] for k in ("val/loss", "val/acc")})

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # before the module's own hook, which logs and resets them: read the epoch's train metrics here
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
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        x, y = batch
        if sum(len(m[0]) for m in self._misclassified) >= MAX_MISCLASSIFIED:
            return  # the grid is full: no host sync for the remaining batches
        wrong = outputs != y  # outputs: the predicted digits (B,) that the module's test_step returns
        if wrong.any():
            shown = unnormalize(x[wrong, 0], pl_module.hparams.mean, pl_module.hparams.std)  # (b, 28, 28)
            self._misclassified.append((shown.cpu(), outputs[wrong].cpu(), y[wrong].cpu()))

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        empty = [torch.zeros(0, IMAGE_SIZE, IMAGE_SIZE), torch.zeros(0), torch.zeros(0)]
        parts = [torch.cat(p) for p in zip(*self._misclassified)] or empty
        images, preds, trues = (p[:MAX_MISCLASSIFIED] for p in parts)
        # computed (and synced across DDP ranks) by the module at the epoch's end; compute() returns that result
        confusion = pl_module.test_confusion.compute().cpu().numpy()
        curves = {
            name: (dim_zero_cat(metric.confidences), dim_zero_cat(metric.accuracies), float(metric.compute()))
            for name, metric in (("raw", pl_module.test_ece_raw), ("temperature-scaled", pl_module.test_ece))
        }
        self.test_report = {
            "confusion": confusion, "misclassified": (images, preds.long(), trues.long()), "reliability": curves,
        }  # fmt: skip
        if not trainer.is_global_zero:
            return
        figures = write_test_report(self.dirpath, self.test_report)
        for name, img in figures.items():
            log_image(trainer.loggers, f"test/{name}", img, trainer.global_step)
