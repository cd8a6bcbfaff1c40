"""How well a trained checkpoint answers, as rates over a few hundred pictures each: what the
real-data tests hold a checkpoint to, and what bench/quality_margins.py measures across training
seeds to choose their margins.

Try it: DATA_DIR=../shared/data python bench/quality_margins.py --seeds 1 2 3
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mnist_lit.inference.predictor import Prediction, Predictor
from mnist_lit.inference.sources import load_pictures
from mnist_lit.reading.pictures import read_digits
from mnist_lit.reading.samples import write_pictures

# the drawing pad's side in pixels
CANVAS = 336
# the pen widths drawn with, in canvas pixels: thin to thick
PEN = (7, 16)
# pictures from one digit to the other, both ends included
FADE_STEPS = 21
# the unsure setting every rate is measured at: predict.py's default
UNSURE = 0.5


def _png(draw_on: Callable[[ImageDraw.ImageDraw], None]) -> bytes:
    """A black drawing on a white pad-sized canvas, as PNG bytes."""
    img = Image.new("L", (CANVAS, CANVAS), 255)
    draw_on(ImageDraw.Draw(img))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def grid(rng: np.random.Generator) -> bytes:
    """A hatched grid: 3 to 5 lines each way, anywhere on the pad."""
    lines, width = int(rng.integers(3, 6)), int(rng.integers(*PEN))
    low, high = sorted(rng.uniform(30, CANVAS - 30, 2))
    high = max(high, low + 120)
    spots = np.linspace(low, min(high, CANVAS - 20), lines)
    return _png(
        lambda d: (
            [d.line([(s, low), (s, high)], fill=0, width=width) for s in spots]
            + [d.line([(low, s), (high, s)], fill=0, width=width) for s in spots]
        )
    )


def star(rng: np.random.Generator) -> bytes:
    """A star drawn in one line, with 5 or 7 points, turned and sized at random."""
    points = int(rng.choice([5, 7]))
    step = 2 if points == 5 else 3
    radius, turn = rng.uniform(80, 150), rng.uniform(0, 2 * math.pi)
    centre = rng.uniform(CANVAS / 2 - 20, CANVAS / 2 + 20, 2)
    tips = [
        (
            centre[0] + radius * math.sin(turn + 2 * math.pi * step * k / points),
            centre[1] - radius * math.cos(turn + 2 * math.pi * step * k / points),
        )
        for k in range(points + 1)
    ]
    width = int(rng.integers(*PEN))
    return _png(lambda d: d.line(tips, fill=0, width=width, joint="curve"))


def scribble(rng: np.random.Generator) -> bytes:
    """One looping line wandering over the pad: a sum of sines with random frequencies and
    phases."""
    freq, phase = rng.uniform(0.6, 3.5, 4), rng.uniform(0, 2 * math.pi, 4)
    steps = np.linspace(0, 12, 120)
    path = [
        (
            CANVAS / 2
            + 100 * math.sin(freq[0] * t + phase[0])
            + 30 * math.sin(freq[1] * t + phase[1]),
            CANVAS / 2
            + 100 * math.sin(freq[2] * t + phase[2])
            + 30 * math.cos(freq[3] * t + phase[3]),
        )
        for t in steps
    ]
    width = int(rng.integers(*PEN))
    return _png(lambda d: d.line(path, fill=0, width=width, joint="curve"))


DOODLES = {"grid": grid, "star": star, "scribble": scribble}


def rejected(predictor: Predictor, pictures: list[bytes]) -> float:
    """The share of `pictures` (PNG bytes) answered "not a digit", at the checkpoint's own
    threshold."""
    predictions = [Prediction.of(str(i), read_digits(png)) for i, png in enumerate(pictures)]
    predictor.fill_answers(predictions, predictor.thresholds("auto", UNSURE))
    return float(np.mean([p.answer.verdict == "not a digit" for p in predictions]))


def doodle_rejection(predictor: Predictor, kind: str, count: int, seed: int = 0) -> float:
    """The share of `count` generated doodles of one kind (grid, star or scribble) that are
    rejected."""
    rng = np.random.default_rng(seed)
    return rejected(predictor, [DOODLES[kind](rng) for _ in range(count)])


def accepted(predictor: Predictor, images: np.ndarray) -> float:
    """The share of 28x28 digits (uint8, white on black, as MNIST's) answered "digit" or "unsure",
    not rejected."""
    predictions = [Prediction(str(i), pixels=image) for i, image in enumerate(images)]
    predictor.fill_answers(predictions, predictor.thresholds("auto", UNSURE))
    return float(np.mean([p.answer.verdict != "not a digit" for p in predictions]))


def fades_through_unsure(predictor: Predictor, starts: np.ndarray, ends: np.ndarray) -> float:
    """The share of cross-fades from each digit of `starts` to its partner in `ends` (28x28 uint8
    each) that pass through "unsure" between the two digits: the answer moves continuously, so
    somewhere it must hesitate."""
    alphas = np.linspace(0, 1, FADE_STEPS)
    thresholds = predictor.thresholds("auto", UNSURE)
    hesitated = []
    for start, end in zip(starts.astype(float), ends.astype(float)):
        fades = [
            Prediction(f"{a:.2f}", pixels=np.rint((1 - a) * start + a * end).astype(np.uint8))
            for a in alphas
        ]
        predictor.fill_answers(fades, thresholds)
        first, last = fades[0].answer.digit, fades[-1].answer.digit
        hesitated.append(
            any(
                f.answer.verdict == "unsure"
                and {f.answer.digit, f.answer.alternative} == {first, last}
                for f in fades
            )
        )
    return float(np.mean(hesitated))


def user_style_accuracy(
    predictor: Predictor, images: np.ndarray, labels: list[int], folder: Path
) -> float:
    """The share of MNIST digits rendered as users send them (written to `folder`) that are read
    right; a digit rejected as "not a digit" counts as wrong."""
    paths = write_pictures(images, labels, folder, seed=3)
    predictions = load_pictures([str(p) for p in paths], workers=2)
    predictor.fill_answers(predictions, predictor.thresholds("auto", UNSURE))
    return float(
        np.mean([not p.error and p.answer.digit == y for p, y in zip(predictions, labels)])
    )
