"""Re-test a checkpoint on the official test set and describe the result, as evaluate.py prints it.

Try it: python evaluate.py ckpt=outputs/runs/<run>/checkpoints/best.ckpt out=outputs/eval
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

from mnist_lit import MnistLitError, checkpoints, first_line
from mnist_lit.data import NORMALIZATIONS
from mnist_lit.data.datamodule import MNISTDataModule
from mnist_lit.training.figures import per_class_rows
from mnist_lit.training.module import MNISTLitModule
from mnist_lit.training.report import RunReport

REPORT_FILES = ("confusion_matrix.png", "misclassified.png", "per_class.csv", "reliability.png")


class StderrProgressBar(TQDMProgressBar):
    """Lightning's progress bar, drawn on stderr rather than stdout, which keeps the results
    alone."""

    def init_test_tqdm(self) -> Tqdm:
        """The test loop's bar, on stderr."""
        return Tqdm(
            desc=self.test_description,
            leave=False,
            dynamic_ncols=True,
            file=sys.stderr,
            bar_format=self.BAR_FORMAT,
        )


def normalization_name(mean: float, std: float) -> str:
    """The data.normalize choice that a checkpoint was trained with."""
    for name, stats in NORMALIZATIONS.items():
        if np.allclose(stats, (mean, std)):
            return name
    raise MnistLitError(
        f"the checkpoint was trained with mean {mean} / std {std}, which no data.normalize matches"
    )


def evaluate_checkpoint(
    ckpt_path: str | os.PathLike,
    make_datamodule: Callable[..., MNISTDataModule],
    out: str | os.PathLike | None,
    accelerator: str = "auto",
    precision: str | None = None,
) -> dict[str, Any]:
    """Test the checkpoint; returns test/loss, test/acc, the calibration errors, the share of digits
    accepted (for a network that can answer "not a digit") and the confusion matrix; writes the
    report files to `out`."""
    if out is not None and any((Path(out) / name).exists() for name in REPORT_FILES):
        raise MnistLitError(f"{out} already holds a report; choose another out=")
    # the file's one read
    ckpt = checkpoints.read(ckpt_path)
    try:
        model = MNISTLitModule(**ckpt["hyper_parameters"])
        # its temperature and rejection threshold; before the weights, as Lightning calls it
        model.on_load_checkpoint(ckpt)
        model.load_state_dict(ckpt["state_dict"])
    except (MnistLitError, RuntimeError, TypeError) as err:
        raise MnistLitError(
            f"{ckpt_path} does not hold an mnist-lit model: {first_line(err)}"
        ) from None
    datamodule = make_datamodule(normalize=normalization_name(*checkpoints.normalization(ckpt)))
    # the precision it was tested with in train.py, so that the numbers agree with its metrics.json
    precision = precision or ckpt.get("precision", "32-true")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    # a progress bar for a person watching; none in a log or a pipe
    shown = sys.stderr.isatty()
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        logger=False,
        enable_model_summary=False,
        callbacks=[
            *([RunReport(out)] if out is not None else []),
            *([StderrProgressBar()] if shown else []),
        ],
        enable_progress_bar=shown,
    )
    metrics = trainer.test(model, datamodule=datamodule, verbose=False)[0]
    # computed at the test's end; this returns that result
    confusion = model.test_confusion.compute().cpu().numpy()
    keys = ("test/loss", "test/acc", "test/ece_raw", "test/ece", "test/accept")
    return {
        **{k: metrics[k] for k in keys if k in metrics},
        "temperature": model.calibration["temperature"],
        "confusion": confusion,
    }


def describe(result: dict[str, Any]) -> str:
    """Loss, accuracy, the per-class table and the confusion matrix as text."""
    lines = [
        f"test loss {result['test/loss']:.4f}   test accuracy {100 * result['test/acc']:.2f}%",
        f"calibration error (ECE, 15 bins) {result['test/ece_raw']:.4f} raw, "
        f"{result['test/ece']:.4f} with "
        f"temperature {result['temperature']:.3f}",
    ]
    if "test/accept" in result:
        lines.append(
            f'digits accepted (not answered "not a digit") {100 * result["test/accept"]:.2f}%'
        )
    lines.append("")
    lines.append("digit  support  correct  accuracy")
    for row in per_class_rows(result["confusion"]):
        lines.append(
            f"{row['digit']:>5}  {row['support']:>7}  {row['correct']:>7}  "
            f"{100 * row['accuracy']:>7.2f}%"
        )
    lines += [
        "",
        "confusion matrix (rows: true digit, columns: predicted)",
        "     " + "".join(f"{k:>6}" for k in range(10)),
    ]
    for k, row in enumerate(result["confusion"]):
        lines.append(f"{k:>5}" + "".join(f"{int(v):>6}" for v in row))
    return "\n".join(lines)
