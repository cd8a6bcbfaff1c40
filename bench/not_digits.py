"""How well predict.py answers "not a digit": pictures of letters, symbols and doodles, drawn on
paper the way bench/user_digits.py draws digits (big canvases, either polarity, coloured ink, uneven
light, JPEG), scored by family; then how many real digits it still accepts.

Run: DATA_DIR=../shared/data .venv/bin/python bench/not_digits.py --ckpt <best.ckpt>

The families are drawn here, by another hand than the training negatives'
(mnist_lit/data/synthetic/negatives.py): other fonts (STIX, Computer Modern), other symbols, and
doodles. Some kinds are trained too, drawn differently (SEEN: scribbles, grids, and the pictograms'
smiley, star, spiral, arrow and heart); the rest are held out. For sources that training never uses
at all, see bench/unseen.py. Letters here include S, Z, B, g and q, which training leaves out for
looking like digits; only O, o, I, l and | (indistinguishable from 0 and 1) are not drawn.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mnist_lit.data.idx import load_split
from mnist_lit.data.synthetic.negatives import font_dir
from mnist_lit.inference.predictor import Predictor
from mnist_lit.inference.sources import load_pictures
from mnist_lit.reading.samples import render, write_pictures

# the drawing's own canvas, before bench/user_digits.render puts it on paper
SIDE = 256
HELD_OUT_FONTS = (
    "STIXGeneral.ttf",
    "STIXGeneralItalic.ttf",
    "cmr10.ttf",
    "cmti10.ttf",
    "cmss10.ttf",
)
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz"
# none is in the training negatives
SYMBOLS = "♥★☺☆✓✗→←↑↓⌂♫☼✉☎✂♞♕"
DOODLES = ("smiley", "house", "star", "spiral", "arrow", "heart", "sun")
# drawn here besides DOODLES
DRAWN_TOO = ("scribble", "grid")
# kinds that the training negatives have too, drawn differently there
# (mnist_lit/data/synthetic/pictograms.py)
SEEN = ("scribble", "grid", "smiley", "star", "spiral", "arrow", "heart")


def _pen(
    draw: ImageDraw.ImageDraw,
    points: list[tuple[float, float]],
    width: int,
    rng: np.random.Generator,
) -> None:
    """A hand-drawn polyline: each point a little off, the strokes of constant width with round
    joints."""
    wobbly = [(x + rng.normal(0, 3), y + rng.normal(0, 3)) for x, y in points]
    draw.line(wobbly, fill=255, width=width, joint="curve")


def _circle(
    cx: float, cy: float, r: float, start: float = 0, end: float = 2 * math.pi, n: int = 40
) -> list:
    return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in np.linspace(start, end, n)]


def doodle(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One hand-drawn doodle, white on black, (SIDE, SIDE) uint8."""
    img = Image.new("L", (SIDE, SIDE), 0)
    draw = ImageDraw.Draw(img)
    w = int(rng.integers(6, 16))
    c, r = SIDE / 2, SIDE * 0.38
    if kind == "smiley":
        _pen(draw, _circle(c, c, r), w, rng)
        for dx in (-0.35, 0.35):
            _pen(draw, _circle(c + dx * r, c - 0.3 * r, 0.08 * r, n=8), w, rng)
        _pen(draw, _circle(c, c + 0.05 * r, 0.55 * r, 0.2 * math.pi, 0.8 * math.pi, 16), w, rng)
    elif kind == "house":
        left, right, top, roof, bottom = c - r, c + r, c - 0.1 * r, c - r, c + r
        _pen(
            draw,
            [
                (left, top),
                (left, bottom),
                (right, bottom),
                (right, top),
                (left, top),
                (c, roof),
                (right, top),
            ],
            w,
            rng,
        )
        _pen(
            draw,
            [
                (c - 0.2 * r, bottom),
                (c - 0.2 * r, c + 0.4 * r),
                (c + 0.2 * r, c + 0.4 * r),
                (c + 0.2 * r, bottom),
            ],
            w,
            rng,
        )
    elif kind == "star":
        tips = [
            (c + r * math.sin(4 * math.pi * k / 5), c - r * math.cos(4 * math.pi * k / 5))
            for k in range(6)
        ]
        _pen(draw, tips, w, rng)
    elif kind == "spiral":
        turns = rng.uniform(2, 3.5)
        _pen(
            draw,
            [
                (
                    c + r * t * math.cos(2 * math.pi * turns * t),
                    c + r * t * math.sin(2 * math.pi * turns * t),
                )
                for t in np.linspace(0.05, 1, 80)
            ],
            w,
            rng,
        )
    else:
        _more(kind, draw, w, rng)
    img = img.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BILINEAR)
    return np.asarray(img)


def _more(kind: str, draw: ImageDraw.ImageDraw, w: int, rng: np.random.Generator) -> None:
    """The rest of doodle(): arrow, heart, sun, grid, scribble."""
    c, r = SIDE / 2, SIDE * 0.38
    if kind == "arrow":
        _pen(draw, [(c - r, c), (c + r, c)], w, rng)
        _pen(draw, [(c + 0.5 * r, c - 0.45 * r), (c + r, c), (c + 0.5 * r, c + 0.45 * r)], w, rng)
    elif kind == "heart":
        t = np.linspace(0, 2 * math.pi, 60)
        x, y = (
            16 * np.sin(t) ** 3,
            13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t),
        )
        _pen(draw, [(c + r * a / 17, c - r * b / 17) for a, b in zip(x, y)], w, rng)
    elif kind == "sun":
        _pen(draw, _circle(c, c, 0.45 * r), w, rng)
        for a in np.linspace(0, 2 * math.pi, 9)[:-1]:
            _pen(
                draw,
                [
                    (c + 0.65 * r * math.cos(a), c + 0.65 * r * math.sin(a)),
                    (c + r * math.cos(a), c + r * math.sin(a)),
                ],
                w,
                rng,
            )
    elif kind == "grid":
        n = int(rng.integers(3, 6))
        for v in np.linspace(c - r, c + r, n):
            _pen(draw, [(v, c - r), (v, c + r)], w, rng)
            _pen(draw, [(c - r, v), (c + r, v)], w, rng)
    else:
        # scribble: a loopy line back and forth
        points, angle, pos = [], rng.uniform(0, 2 * math.pi), np.array([c, c])
        for _ in range(60):
            angle += rng.normal(0, 0.6)
            pos = np.clip(pos + 12 * np.array([math.cos(angle), math.sin(angle)]), 20, SIDE - 20)
            points.append(tuple(pos))
        _pen(draw, points, w, rng)


def glyph(char: str, font: ImageFont.FreeTypeFont) -> np.ndarray | None:
    """A character, white on black, (SIDE, SIDE) uint8; None when the font lacks it."""
    if font.getmask(char).getbbox() is None:
        return None
    img = Image.new("L", (SIDE, SIDE), 0)
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = draw.textbbox((0, 0), char, font=font)
    draw.text(((SIDE - right - left) / 2, (SIDE - bottom - top) / 2), char, fill=255, font=font)
    return np.asarray(img)


def drawings(per_family: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """(family, white-on-black drawing) pairs: held-out fonts' letters, symbols, doodles and the
    seen families."""
    out: list[tuple[str, np.ndarray]] = []
    fonts = [ImageFont.truetype(str(font_dir() / name), 180) for name in HELD_OUT_FONTS]
    symbol_font = ImageFont.truetype(str(font_dir() / "DejaVuSans.ttf"), 180)
    while sum(f == "letters (held-out fonts)" for f, _ in out) < per_family:
        drawn = glyph(str(rng.choice(list(LETTERS))), fonts[int(rng.integers(len(fonts)))])
        if drawn is not None:
            out.append(("letters (held-out fonts)", drawn))
    symbols = [s for s in SYMBOLS if glyph(s, symbol_font) is not None]
    out += [("symbols", glyph(str(rng.choice(symbols)), symbol_font)) for _ in range(per_family)]
    for kind in (*DOODLES, *DRAWN_TOO):
        out += [(kind, doodle(kind, rng)) for _ in range(per_family)]
    return out


def save(
    pictures: list[tuple[str, np.ndarray]], out: Path, rng: np.random.Generator
) -> list[tuple[str, Path]]:
    """Put each drawing on paper as bench/user_digits does, and save it as PNG or JPEG."""
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    for i, (family, drawing) in enumerate(pictures):
        img, ext = render(drawing, rng)
        path = out / f"{i:05d}_{family.split()[0]}{ext}"
        img.save(path, **({"quality": int(rng.integers(60, 96))} if ext == ".jpg" else {}))
        saved.append((family, path))
    return saved


def main() -> None:
    """Score rejection per family, then acceptance of user-style digits."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--per-family", type=int, default=60)
    parser.add_argument("--digits", type=int, default=1000, help="user-style digit pictures")
    parser.add_argument("--not-digit", default="auto", help="predict.py's not_digit setting")
    parser.add_argument("--unsure", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=os.environ.get("DATA_DIR", "data"))
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    predictor = Predictor(args.ckpt, device="cpu")
    thresholds = predictor.thresholds(
        args.not_digit if args.not_digit == "auto" else float(args.not_digit), args.unsure
    )
    workers = os.cpu_count() or 1

    with tempfile.TemporaryDirectory() as tmp:
        saved = save(drawings(args.per_family, rng), Path(tmp) / "not_digits", rng)
        predictions = load_pictures([str(p) for _, p in saved], workers)
        predictor.fill_answers(predictions, thresholds)
        by_family: dict[str, list[bool]] = defaultdict(list)
        for (family, _), p in zip(saved, predictions):
            by_family[family].append(p.error is not None or p.answer.verdict == "not a digit")

        images, labels = load_split(args.data, "test")
        truth = labels[: args.digits].tolist()
        paths = write_pictures(
            images[: args.digits].numpy(), truth, Path(tmp) / "digits", seed=args.seed
        )
        digits = load_pictures([str(p) for p in paths], workers)
        predictor.fill_answers(digits, thresholds)

    print(
        f"Checkpoint {args.ckpt}; not_digit threshold {thresholds.not_digit}, unsure below "
        f"{thresholds.unsure}\n"
    )
    print(
        '| family | kind held out from training | pictures | answered "not a digit" '
        "|\n|---|---|---:|---:|"
    )
    for family, rejected in by_family.items():
        held = "no" if family in SEEN else "yes"
        print(f"| {family} | {held} | {len(rejected)} | {100 * np.mean(rejected):.1f}% |")
    held_out = [r for f, rs in by_family.items() if f not in SEEN for r in rs]
    every = [r for rs in by_family.values() for r in rs]
    print(f"| **held-out families** | | {len(held_out)} | **{100 * np.mean(held_out):.1f}%** |")
    print(f"| **all** | | {len(every)} | **{100 * np.mean(every):.1f}%** |")

    answered = [p.answer for p in digits if p.answer is not None]
    accepted = [a.verdict != "not a digit" for a in answered]
    right = [p.answer is not None and p.answer.digit == y for p, y in zip(digits, truth)]
    unsure = [a.verdict == "unsure" for a in answered]
    print(f"\n| {args.digits} user-style digits (bench/user_digits.py) | |\n|---|---:|")
    print(f"| accepted (digit or unsure) | {100 * np.mean(accepted):.1f}% |")
    print(f"| right digit (a rejected digit counts as wrong) | {100 * np.mean(right):.1f}% |")
    print(f"| unsure | {100 * np.mean(unsure):.1f}% |")


if __name__ == "__main__":
    main()
