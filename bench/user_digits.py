"""Turn MNIST *test* digits into the pictures users actually send: big canvases, off-centre, thick or thin
strokes, dark-on-light and light-on-dark, transparent PNGs, coloured ink on tinted paper, uneven light, JPEG.

Run: DATA_DIR=../shared/data .venv/bin/python bench/user_digits.py --out outputs/user_digits --count 1000
Files are named <index>_<label>.<ext>; bench/predict_bench.py scores predict.py on them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from mnist_lit.data.idx import load_split

STYLES = ("paper", "paper", "paper", "dark", "transparent", "colour")  # paper (dark on light) is the common case


def render(digit: np.ndarray, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """One user-style picture of a 28x28 uint8 MNIST digit; returns it and the file extension to save it with."""
    canvas_w, canvas_h = (int(v) for v in rng.integers(96, 640, size=2))
    size = int(rng.uniform(0.25, 0.9) * min(canvas_w, canvas_h))  # the 28x28 field's side on the canvas
    glyph = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
    stroke = rng.choice(["thin", "normal", "thick"], p=[0.25, 0.5, 0.25])
    k = max(3, (size // 40) * 2 + 1)
    if stroke == "thick":
        glyph = glyph.filter(ImageFilter.MaxFilter(k))
    elif stroke == "thin":
        glyph = glyph.filter(ImageFilter.MinFilter(k))
    alpha = np.zeros((canvas_h, canvas_w), np.float32)
    top, left = int(rng.integers(0, canvas_h - size + 1)), int(rng.integers(0, canvas_w - size + 1))
    alpha[top : top + size, left : left + size] = np.asarray(glyph, np.float32) / 255.0
    if alpha.max() < 0.3:  # a thin-stroke erosion wiped it out; fall back to normal strokes
        alpha[top : top + size, left : left + size] = (
            np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255.0
        )

    style = STYLES[int(rng.integers(len(STYLES)))]
    if style == "transparent":
        ink = rng.uniform(0, 0.6, size=3) if rng.random() < 0.7 else rng.uniform(0.6, 1.0, size=3)
        rgba = np.dstack([np.broadcast_to(ink, alpha.shape + (3,)), alpha])
        return Image.fromarray((rgba * 255).astype(np.uint8), "RGBA"), ".png"
    if style == "dark":  # chalk on a blackboard, light pen on a dark app theme
        paper, ink = rng.uniform(0.0, 0.3, 3), rng.uniform(0.75, 1.0, 3)
    elif style == "colour":
        paper, ink = rng.uniform(0.7, 1.0, 3), rng.uniform(0.0, 0.6, 3)
    else:
        paper, ink = np.full(3, rng.uniform(0.75, 1.0)), np.full(3, rng.uniform(0.0, 0.35))
    # uneven light: a linear gradient across the sheet, plus paper grain
    yy, xx = np.mgrid[0:canvas_h, 0:canvas_w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / canvas_w + np.sin(angle) * yy / canvas_h) * rng.uniform(0.0, 0.3)
    light = (1.0 - ramp + ramp.mean())[..., None]
    grain = rng.normal(0, rng.uniform(0.0, 0.04), size=(canvas_h, canvas_w, 1))
    rgb = (paper * (1 - alpha[..., None]) + ink * alpha[..., None]) * light + grain
    img = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")
    return img, (".jpg" if rng.random() < 0.6 else ".png")


def write_pictures(images: np.ndarray, labels: list[int], out: Path, seed: int = 0) -> list[Path]:
    """Render each (28, 28) uint8 digit as a user-style picture named <index>_<label>.<ext> in `out`."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (digit, label) in enumerate(zip(images, labels)):
        img, ext = render(digit, rng)
        path = out / f"{i:05d}_{int(label)}{ext}"
        if ext == ".jpg":
            img.save(path, quality=int(rng.integers(60, 96)))
        else:
            img.save(path)
        paths.append(path)
    return paths


def main() -> None:
    """Write --count pictures made from the first MNIST test digits."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("outputs/user_digits"))
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=os.environ.get("DATA_DIR", "data"))
    args = parser.parse_args()
    images, labels = load_split(args.data, "test")
    write_pictures(images[: args.count].numpy(), labels[: args.count].tolist(), args.out, args.seed)
    print(f"wrote {args.count} pictures to {args.out}")


if __name__ == "__main__":
    main()
