"""Reading whole numbers: exact-number accuracy (every digit right) on generated pictures of 2-6
digits, with no touching digits and with one touching pair, and single digits read in `auto` mode
against `read=digit`.

Run: DATA_DIR=../shared/data .venv/bin/python bench/read_numbers.py --ckpt <best.ckpt>
Numbers are made from MNIST *test* digits (never trained on) and from DejaVu digits bent like
handwriting: uneven gaps, a wobbling baseline, off-centre on a larger canvas, either polarity, PNG
or JPEG.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mnist_lit.data.idx import load_split  # noqa: E402
from mnist_lit.data.synthetic.negatives import font_dir  # noqa: E402
from mnist_lit.inference.predictor import Predictor  # noqa: E402
from mnist_lit.inference.sources import load_pictures  # noqa: E402
from mnist_lit.reading.samples import write_pictures  # noqa: E402

# MNIST's field; a digit's ink is about 20 px of it
CELL = 28
# the written line is this many times MNIST's size
SCALE = (3, 6)
# a touching pair's gap between inks, in MNIST pixels: their strokes meet or cross a little
TOUCH = (-2, 0)
# other gaps between inks: some tight, some wide
GAP = (2, 10)


def font_digit(d: int, rng: np.random.Generator) -> np.ndarray:
    """A DejaVu digit on a 28x28 field, white on black, sheared and thickened a little like
    handwriting."""
    # Display: no digits
    fonts = sorted(p for p in font_dir().glob("DejaVuSans*.ttf") if "Display" not in p.name)
    font = ImageFont.truetype(str(fonts[int(rng.integers(len(fonts)))]), 22)
    img = Image.new("L", (CELL, CELL), 0)
    ImageDraw.Draw(img).text((CELL / 2, CELL / 2), str(d), fill=255, font=font, anchor="mm")
    shear = float(rng.uniform(-0.3, 0.3))
    img = img.transform(
        img.size,
        Image.Transform.AFFINE,
        (1, shear, -shear * CELL / 2, 0, 1, 0),
        Image.Resampling.BILINEAR,
    )
    return np.asarray(img.rotate(float(rng.uniform(-8, 8)), Image.Resampling.BILINEAR))


def number_picture(
    digits: list[np.ndarray], touching: int | None, rng: np.random.Generator
) -> Image.Image:
    """Digits (28x28, white on black) side by side on paper, `gap` MNIST pixels between one digit's
    ink and the next's; `touching` is the index of a pair whose ink is made to meet."""
    inks = [
        d[:, np.nonzero(d.max(axis=0) > 40)[0].min() : np.nonzero(d.max(axis=0) > 40)[0].max() + 1]
        for d in digits
    ]
    gaps = [
        int(rng.integers(*TOUCH)) if k == touching else int(rng.integers(*GAP))
        for k in range(len(digits) - 1)
    ]
    width = sum(i.shape[1] for i in inks) + sum(gaps) + 2 * CELL
    height = 3 * CELL
    line = np.zeros((height, width), np.float32)
    x = CELL
    for k, d in enumerate(inks):
        # a wobbling baseline
        y = CELL + int(rng.integers(-3, 4))
        w = d.shape[1]
        np.maximum(line[y : y + CELL, x : x + w], d / 255.0, out=line[y : y + CELL, x : x + w])
        x += w + (gaps[k] if k < len(gaps) else 0)
    scale = float(rng.uniform(*SCALE))
    size = (round(width * scale), round(height * scale))
    ink = (
        np.asarray(
            Image.fromarray((line * 255).astype(np.uint8)).resize(size, Image.Resampling.BICUBIC)
        )
        / 255.0
    )
    canvas = np.zeros(
        (size[1] + 2 * int(rng.integers(20, 120)), size[0] + int(rng.integers(40, 240))), np.float32
    )
    top, left = (
        int(rng.integers(0, canvas.shape[0] - size[1] + 1)),
        int(rng.integers(0, canvas.shape[1] - size[0] + 1)),
    )
    canvas[top : top + size[1], left : left + size[0]] = ink
    paper, pen = rng.uniform(200, 250), rng.uniform(10, 70)
    # chalk on a board
    if rng.random() < 0.3:
        paper, pen = pen, paper
    grey = paper + (pen - paper) * canvas + rng.normal(0, 3, canvas.shape)
    return Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8)).convert("RGB")


def write_numbers(
    images: np.ndarray,
    labels: np.ndarray,
    out: Path,
    count: int,
    touching: bool,
    fonts: bool,
    seed: int,
) -> list[tuple[Path, str]]:
    """`count` number pictures under out; returns (path, the number) pairs."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(count):
        n = int(rng.integers(2, 7))
        if fonts:
            values = [int(v) for v in rng.integers(0, 10, n)]
            digits = [font_digit(v, rng) for v in values]
        else:
            idx = rng.integers(0, len(images), n)
            values, digits = [int(labels[j]) for j in idx], [images[j] for j in idx]
        pair = int(rng.integers(0, n - 1)) if touching else None
        ext = ".jpg" if rng.random() < 0.5 else ".png"
        path = out / f"{i:05d}_{''.join(map(str, values))}{ext}"
        number_picture(digits, pair, rng).save(
            path, quality=int(rng.integers(70, 95))
        ) if ext == ".jpg" else number_picture(digits, pair, rng).save(path)
        made.append((path, "".join(map(str, values))))
    return made


def exact(predictor: Predictor, made: list[tuple[Path, str]], read: str) -> tuple[float, float]:
    """Exact-number accuracy and seconds per picture (loading and classifying, one process)."""
    start = time.perf_counter()
    predictions = load_pictures([str(p) for p, _ in made], 1, read=read)
    predictor.fill_answers(predictions, predictor.thresholds("auto", unsure=0.5))
    seconds = (time.perf_counter() - start) / len(made)
    right = [
        not p.error and p.fields()["number"] == number for p, (_, number) in zip(predictions, made)
    ]
    return float(np.mean(right)), seconds


def main() -> None:
    """Write the pictures, read them, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--count", type=int, default=300, help="pictures per set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=os.environ.get("DATA_DIR", "data"))
    args = parser.parse_args()
    images, labels = load_split(args.data, "test")
    images, labels = images.numpy(), labels.numpy()
    predictor = Predictor(args.ckpt, device="cpu")
    print(f"| {args.count} pictures per set, 2-6 digits | exact number | per picture |")
    print("|---|---:|---:|")
    sixes: list[tuple[Path, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, touching, fonts in (
            ("MNIST test digits, none touching", False, False),
            ("MNIST test digits, one touching pair", True, False),
            ("DejaVu digits bent like handwriting, none touching", False, True),
        ):
            made = write_numbers(
                images,
                labels,
                Path(tmp) / name[:12].replace(" ", "_") / str(touching),
                args.count,
                touching,
                fonts,
                args.seed,
            )
            for read in ("auto", "number"):
                acc, seconds = exact(predictor, made, read)
                print(f"| {name}, `read={read}` | {100 * acc:.1f}% | {1000 * seconds:.1f} ms |")
            sixes = sixes if fonts or touching else [m for m in made if len(m[1]) == 6]
        singles = write_pictures(
            images[: args.count * 3],
            labels[: args.count * 3].tolist(),
            Path(tmp) / "singles",
            seed=args.seed,
        )
        made = [(p, str(int(p.stem.split("_")[1]))) for p in singles]
        for read in ("digit", "auto"):
            acc, seconds = exact(predictor, made, read)
            print(
                f"| {len(made)} single user-style digits, `read={read}` | {100 * acc:.1f}% | "
                f"{1000 * seconds:.1f} ms |"
            )
        acc, six_seconds = exact(predictor, sixes, "auto")
        print(
            f"| the {len(sixes)} six-digit numbers of the first set, `read=auto` | "
            f"{100 * acc:.1f}% | "
            f"{1000 * six_seconds:.1f} ms, {six_seconds / seconds:.1f}x a single digit's |"
        )


if __name__ == "__main__":
    main()
