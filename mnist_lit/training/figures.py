"""The report's pictures, drawn without a display: digit grids, curves, the confusion matrix, the
reliability diagram, and the test report's files. Figures are drawn with matplotlib's object API (no
pyplot). No Lightning: the report callback, evaluate.py and the negatives' sheet all draw here.

Try it: python -m mnist_lit.data.synthetic.negatives outputs/negatives.png
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from mnist_lit import IMAGE_SIZE
from mnist_lit.training.calibration import reliability

GRID_COLS = 16
# each 28x28 digit is drawn 84x84
TILE_SCALE = 3
# px under each tile
CAPTION_H = 14


def digit_grid(images: torch.Tensor, captions: list[str], cols: int = GRID_COLS) -> Image.Image:
    """Tiles of (N, 28, 28) images in [0, 1], each with its caption underneath, as one RGB
    picture."""
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
            points = [
                (e + 1, history[e][f"{stage}/{metric}"])
                for e in epochs
                if f"{stage}/{metric}" in history[e]
            ]
            if points:
                ax.plot(*zip(*points), marker="o", label=stage)
        ax.set_xlabel("epoch")
        ax.set_title("accuracy" if metric == "acc" else "loss")
        ax.grid(alpha=0.3)
        ax.legend()
    return _to_image(fig)


def confusion_image(confusion: np.ndarray) -> Image.Image:
    """The 10x10 confusion matrix as a heatmap with counts (rows: true digit, columns:
    predicted)."""
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
    """Accuracy against confidence per confidence bin, one curve per name -> (confidences, correct,
    ECE); a calibrated model lies on the diagonal. Beside it, how many test digits each bin
    holds."""
    fig = _figure(10, 4.5)
    diagram, counts = fig.subplots(1, 2)
    diagram.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    for name, (confidences, correct, ece) in curves.items():
        rows = reliability(confidences, correct)
        diagram.plot(
            [r["confidence"] for r in rows],
            [r["accuracy"] for r in rows],
            marker="o",
            label=f"{name} (ECE {ece:.4f})",
        )
        counts.plot(
            [r["confidence"] for r in rows], [r["count"] for r in rows], marker="o", label=name
        )
    diagram.set_xlabel("confidence (mean of the bin)")
    diagram.set_ylabel("accuracy")
    diagram.set_title("reliability")
    # nearly every digit sits in the top bin; the rest must stay visible
    counts.set_yscale("log")
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
        {
            "digit": k,
            "support": int(support[k]),
            "correct": int(confusion[k, k]),
            "accuracy": float(confusion[k, k] / support[k]) if support[k] else float("nan"),
        }
        for k in range(len(confusion))
    ]


def write_test_report(out_dir: str | os.PathLike, test: dict[str, Any]) -> dict[str, Image.Image]:
    """confusion_matrix.png, misclassified.png, reliability.png and per_class.csv from RunReport's
    `test_report`; returns the pictures by name, so that they can also go to the loggers without
    being drawn twice."""
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
    return digit_grid(
        images, [f"pred {p} / true {t}" for p, t in zip(preds.tolist(), trues.tolist())], cols=8
    )
