"""How well predict.py answers "not a digit" on drawings from sources that training never uses:
glyphs of six font packages kept for evaluation, typed or traced with a thin pen, and doodles by a
second hand, drawn here with smooth curves of another kind than bench/not_digits.py's and
mnist_lit/data/synthetic/negatives.py's. Then the other side: digits in handwriting fonts (not the
kept ones) accepted and read right.

Then the threshold-free figures: each source's AUROC against MNIST test digits saved as PNG files,
and the share it rejects at the threshold that accepts 99.5% of those digits; user-style and
handwriting-font digits' acceptance at that threshold. These read every picture as one digit.

Run: DATA_DIR=../shared/data .venv/bin/python bench/unseen.py --ckpt <best.ckpt>
(bench/signals.py scores the same drawings by each "not a digit" signal on its own.)
The kept fonts: apt-get install fonts-dkg-handwriting fonts-breip fonts-bwht fonts-femkeklaver
fonts-humor-sans fonts-comic-neue. Nothing under mnist_lit/ may name them
(tests/data/synthetic/test_negatives.py checks).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import cv2
import not_digits
import numpy as np
from paper import fonts, prune, thin
from PIL import Image, ImageDraw, ImageFont

from mnist_lit.data.idx import load_split
from mnist_lit.inference.predictor import Predictor
from mnist_lit.inference.sources import load_pictures
from mnist_lit.reading.samples import write_pictures

# a drawing's own canvas
SIDE = not_digits.SIDE
# Debian package: where its fonts are
KEPT_FONTS = {
    "fonts-dkg-handwriting": "/usr/share/fonts/truetype/fifthhorseman",
    "fonts-breip": "/usr/share/fonts/truetype/breip",
    "fonts-bwht": "/usr/share/fonts/opentype/bwht",
    "fonts-femkeklaver": "/usr/share/fonts/truetype/femkeklaver",
    "fonts-humor-sans": "/usr/share/fonts/truetype/humor-sans",
    "fonts-comic-neue": "/usr/share/fonts/opentype/comic-neue",
}
# the kinds of the reported failures, then more; no letter that people write like a digit (O 0, I l
# 1, Z 2, S 5,
# b G 6, B 8, g q 9)
GLYPHS = "YHERPFefhrMNW?#@&*AKXkmnptvwxy"
NAMED = (
    "smiley",
    "heart",
    "check",
    "spiral",
    "question",
    "house",
    "star",
    "arrow",
    "hatching",
    "circle-dot",
)
# of MNIST test digits as PNG files, accepted by the threshold-free figures' threshold
ACCEPT = 0.995
UNNAMED = ("cloud", "flower", "fish", "tree", "moon", "bolt", "eye", "envelope", "cup", "cat")


def _curve(
    points: list[tuple[float, float]], rng: np.random.Generator, steps: int = 12
) -> np.ndarray:
    """A Catmull-Rom curve through `points`, each moved a little, as (N, 2) float: a smooth hand,
    not a polyline."""
    p = np.array(points, np.float64) + rng.normal(0, 2.5, (len(points), 2))
    p = np.vstack([p[0], p, p[-1]])
    t = np.linspace(0, 1, steps, endpoint=False)[:, None]
    out = []
    for k in range(1, len(p) - 2):
        a, b, c, d = p[k - 1], p[k], p[k + 1], p[k + 2]
        out.append(
            0.5
            * (
                2 * b
                + (c - a) * t
                + (2 * a - 5 * b + 4 * c - d) * t**2
                + (3 * b - a - 3 * c + d) * t**3
            )
        )
    out.append(p[-2][None])
    return np.vstack(out)


def _sharp(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points each given twice: a Catmull-Rom curve turns sharply there, as a pen does at a
    corner."""
    return [q for point in points for q in (point, point)]


def _strokes(kind: str, rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    """The control points of each stroke of one doodle of `kind`, on a SIDE canvas."""
    c, r = SIDE / 2, SIDE * rng.uniform(0.3, 0.4)
    # how much rounder or flatter than a circle this hand draws
    sq = rng.uniform(0.8, 1.2)
    pi = math.pi

    # points given in units of r about the centre
    def at(*xy: float) -> list[tuple[float, float]]:
        return [(c + x * r, c + y * r) for x, y in zip(xy[::2], xy[1::2])]

    def ring(
        x: float, y: float, rx: float, ry: float, a0: float = 0.0, a1: float = 2 * pi, n: int = 14
    ) -> list:
        return [
            (c + r * (x + rx * math.cos(a)), c + r * (y + ry * math.sin(a)))
            for a in np.linspace(a0, a1, n)
        ]

    def polar(radii: list[float], turn: float) -> list[tuple[float, float]]:
        return [
            (c + r * q * math.sin(turn * k), c - r * q * math.cos(turn * k))
            for k, q in enumerate(radii)
        ]

    shapes = {
        "smiley": lambda: [
            ring(0, 0, 1, sq),
            ring(-0.35, -0.3, 0.03, 0.03, n=5),
            ring(0.35, -0.3, 0.03, 0.03, n=5),
            ring(0, 0.1, 0.5, 0.4, 0.3, 2.8, 6),
        ],
        "heart": lambda: [at(0, 1, -0.9, -0.1, -0.6, -0.7, 0, -0.35, 0.6, -0.7, 0.9, -0.1, 0, 1)],
        "check": lambda: [_sharp(at(-1, 0, -0.3, 0.7, 1, -0.9))],
        "spiral": lambda: [
            [
                (c + r * t * math.cos(6 * pi * t), c + r * t * math.sin(6 * pi * t))
                for t in np.linspace(0.05, 1, 30)
            ]
        ],
        "question": lambda: [
            ring(0, -0.4, 0.5, 0.5, pi, 2.4 * pi, 8) + at(0, 0.4),
            ring(0, 0.85, 0.03, 0.03, n=5),
        ],
        "house": lambda: [_sharp(at(-1, 0, -1, 1, 1, 1, 1, 0, 0, -1, -1, 0, 1, 0))],
        "star": lambda: [_sharp(polar([1 if k % 2 == 0 else 0.45 for k in range(11)], pi / 5))],
        "arrow": lambda: [at(-1, 1, 1, -1), _sharp(at(0.2, -1, 1, -1, 1, -0.2))],
        "hatching": lambda: [at(-1 + k / 3, 1, k / 3, -1) for k in range(5)],
        "circle-dot": lambda: [ring(0, 0, 1, sq), ring(0, 0, 0.04, 0.04, n=5)],
        # kinds that the reported failures never named
        "cloud": lambda: [
            ring(-0.5, 0, 0.4, 0.35, 0.5 * pi, 1.6 * pi, 6)
            + ring(0, -0.3, 0.5, 0.4, pi, 2 * pi, 6)
            + ring(0.55, 0, 0.4, 0.35, 1.4 * pi, 2.5 * pi, 6)
            + at(-0.5, 0.35)
        ],
        "flower": lambda: (
            [
                ring(0.55 * math.cos(a), -0.4 + 0.55 * math.sin(a), 0.25, 0.25, n=8)
                for a in np.linspace(0, 2 * pi, 6)[:-1]
            ]
            + [at(0, 0.15, 0, 1)]
        ),
        "fish": lambda: [
            at(-1, 0, -0.2, -0.5, 0.5, 0, -0.2, 0.5, -1, 0),
            _sharp(at(0.5, 0, 1, -0.4, 1, 0.4, 0.5, 0)),
        ],
        "tree": lambda: [
            at(-0.15, 1, -0.15, 0.2),
            at(0.15, 1, 0.15, 0.2),
            ring(0, -0.3, 0.6, 0.55, 0.6 * pi, 2.4 * pi, 12),
        ],
        "moon": lambda: [
            ring(0, 0, 1, 1, 0.5 * pi, 1.5 * pi, 9) + ring(-0.3, 0, 0.7, 1, 1.5 * pi, 0.5 * pi, 9)
        ],
        "bolt": lambda: [_sharp(at(0.2, -1, -0.5, 0.1, 0.1, 0, -0.3, 1))],
        "eye": lambda: [
            ring(0, 0, 1, 0.45, 0, pi, 8),
            ring(0, 0, 1, 0.45, pi, 2 * pi, 8),
            ring(0, 0, 0.25, 0.25, n=8),
        ],
        "envelope": lambda: [
            _sharp(at(-1, -0.6, 1, -0.6, 1, 0.6, -1, 0.6, -1, -0.6)),
            _sharp(at(-1, -0.6, 0, 0.1, 1, -0.6)),
        ],
        "cup": lambda: [
            _sharp(at(-0.6, -0.7, -0.5, 0.8, 0.5, 0.8, 0.6, -0.7)),
            ring(0.6, 0, 0.35, 0.35, -0.5 * pi, 0.5 * pi, 6),
        ],
        "cat": lambda: [
            ring(0, 0.1, 0.8, 0.7),
            _sharp(at(-0.7, -0.3, -0.6, -1, -0.2, -0.55)),
            _sharp(at(0.7, -0.3, 0.6, -1, 0.2, -0.55)),
            at(-0.9, 0.2, -0.3, 0.3),
            at(0.9, 0.2, 0.3, 0.3),
        ],
    }
    return shapes[kind]()


def doodle(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One doodle of the second hand, white on black, (SIDE, SIDE) uint8: smooth strokes of a thin
    or broad pen, turned and sheared a little."""
    # drawn at 4x, then reduced: anti-aliased strokes
    scale = 4
    img = Image.new("L", (SIDE * scale, SIDE * scale), 0)
    draw = ImageDraw.Draw(img)
    width = int(rng.choice([3, 4, 6, 9, 14]) * scale)
    for points in _strokes(kind, rng):
        curve = _curve(points, rng) * scale
        draw.line([tuple(p) for p in curve], fill=255, width=width, joint="curve")
        for end in (curve[0], curve[-1]):
            draw.ellipse(
                [end[0] - width / 2, end[1] - width / 2, end[0] + width / 2, end[1] + width / 2],
                fill=255,
            )
    img = img.resize((SIDE, SIDE), Image.Resampling.BOX)
    shear = np.float32([[1, rng.uniform(-0.2, 0.2), 0], [0, 1, 0]])
    angle = cv2.getRotationMatrix2D(
        (SIDE / 2, SIDE / 2), rng.uniform(-20, 20), rng.uniform(0.75, 1.0)
    )
    out = cv2.warpAffine(np.asarray(img), angle, (SIDE, SIDE))
    return cv2.warpAffine(out, shear, (SIDE, SIDE))


def glyph(char: str, font: ImageFont.FreeTypeFont, pen: int | None) -> np.ndarray | None:
    """A character, white on black, (SIDE, SIDE) uint8, as typed (`pen` None) or traced along its
    centre lines by a round pen `pen` px wide; None when the font lacks it."""
    # the same SIDE canvas as bench/not_digits.py's typed glyphs
    out = not_digits.glyph(char, font)
    if out is None or pen is None:
        return out
    centre = prune(thin((out > 127).astype(np.uint8)), 3)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (pen | 1, pen | 1))
    return cv2.GaussianBlur(cv2.dilate(centre * 255, disc), (0, 0), 0.8)


def on_paper(drawing: np.ndarray, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """The drawing on a sheet of another rendering than the training's and the other benches': any
    size, either polarity, a tinted paper, light falling off, grain, and JPEG or PNG."""
    w, h = (int(v) for v in rng.integers(160, 720, 2))
    side = int(rng.uniform(0.35, 0.95) * min(w, h))
    mark = (
        cv2.resize(drawing, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    )
    cover = np.zeros((h, w), np.float32)
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    cover[y : y + side, x : x + side] = mark
    dark_paper = rng.random() < 0.25
    paper = rng.uniform(10, 60, 3) if dark_paper else rng.uniform(200, 255, 3)
    ink = rng.uniform(190, 255, 3) if dark_paper else rng.uniform(0, 120, 3)
    page = paper * (1 - cover[..., None]) + ink * cover[..., None]
    ramp = np.linspace(1 - rng.uniform(0, 0.25), 1, w, dtype=np.float32)[None, :, None]
    page = page * ramp + rng.normal(0, rng.uniform(1, 5), page.shape)
    img = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))
    return (img, ".jpg") if rng.random() < 0.5 else (img, ".png")


def sources(per_kind: int, rng: np.random.Generator) -> list[tuple[str, str, np.ndarray]]:
    """(source, kind, drawing): every kept font package's glyphs typed and traced, and the second
    hand's doodles."""
    out = []
    for package, folder in KEPT_FONTS.items():
        files = sorted(p for p in Path(folder).glob("*") if p.suffix.lower() in (".ttf", ".otf"))
        if not files:
            raise SystemExit(f"{package} is not installed: apt-get install {' '.join(KEPT_FONTS)}")
        for style in ("typed", "traced"):
            for char in GLYPHS:
                for _ in range(max(1, per_kind // 10)):
                    font = ImageFont.truetype(
                        str(files[int(rng.integers(len(files)))]), int(rng.integers(140, 200))
                    )
                    drawn = glyph(
                        char, font, None if style == "typed" else int(rng.integers(4, 14))
                    )
                    if drawn is not None:
                        out.append((f"{package} ({style})", char, drawn))
    for kind in (*NAMED, *UNNAMED):
        out += [("second hand", kind, doodle(kind, rng)) for _ in range(per_kind)]
    return out


def font_digits(count: int, rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
    """`count` digits in the handwriting fonts bench/paper.py uses (none of the kept ones), typed or
    traced."""
    here = fonts()
    if not here:
        raise SystemExit(
            "no handwriting fonts: apt-get install fonts-kaushanscript fonts-kristi "
            "fonts-dancingscript"
        )
    out = []
    while len(out) < count:
        d = int(rng.integers(10))
        font = ImageFont.truetype(here[int(rng.integers(len(here)))], int(rng.integers(140, 200)))
        drawn = glyph(str(d), font, None if rng.random() < 0.5 else int(rng.integers(5, 14)))
        if drawn is not None:
            out.append((d, drawn))
    return out


def save(pictures: list[np.ndarray], folder: Path, rng: np.random.Generator) -> list[str]:
    """Save each drawing on paper under folder; their paths."""
    folder.mkdir(parents=True)
    paths = []
    for i, drawing in enumerate(pictures):
        img, ext = on_paper(drawing, rng)
        paths.append(str(folder / f"{i:05d}{ext}"))
        img.save(paths[-1], **({"quality": int(rng.integers(60, 95))} if ext == ".jpg" else {}))
    return paths


def read(predictor: Predictor, paths: list[str], mode: str = "auto") -> list:
    """Each picture read as predict.py reads it with `read=mode`: its Prediction."""
    predictions = load_pictures(paths, os.cpu_count() or 1, read=mode)
    predictor.fill_answers(predictions, predictor.thresholds("auto", unsure=0.5))
    return predictions


def no_digit_scores(predictor: Predictor, paths: list[str]) -> np.ndarray:
    """Each picture's probability of holding no digit, read as one digit (1 when it cannot be
    read at all)."""
    return np.array(
        [1.0 if p.error else p.answer.not_digit for p in read(predictor, paths, "digit")]
    )


def auroc(digits: np.ndarray, others: np.ndarray) -> float:
    """The chance that a non-digit scores higher than a digit, ties counting half (Mann-Whitney)."""
    both = np.concatenate([digits, others])
    _, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    # each value's average 1-based rank, ties sharing theirs
    ranks = ((ends - counts + 1 + ends) / 2)[inverse]
    n_digits, n_others = len(digits), len(others)
    return float((ranks[n_digits:].sum() - n_others * (n_others + 1) / 2) / (n_digits * n_others))


def digit_files(data: str, count: int, folder: Path, seed: int) -> tuple[list[str], list[str]]:
    """`count` MNIST test digits saved as 28x28 PNG files, and as user-style pictures."""
    images, labels = (t.numpy() for t in load_split(data, "test"))
    picked = np.random.default_rng(seed).permutation(len(labels))[:count]
    plain = folder / "mnist"
    plain.mkdir(parents=True)
    paths = []
    for i in picked:
        paths.append(str(plain / f"{i:05d}.png"))
        Image.fromarray(images[i]).save(paths[-1])
    styled = write_pictures(images[picked], labels[picked].tolist(), folder / "user", seed)
    return paths, [str(p) for p in styled]


def rejected(p) -> bool:
    """Whether a picture was answered "not a digit" (or could not be read at all)."""
    return p.error is not None or p.answer.verdict == "not a digit"


def score(
    ckpt: str, made: list, digits: list, paths: dict[str, list[str]]
) -> tuple[dict, dict, list, list, dict, np.ndarray, np.ndarray]:
    """Read every drawing and font digit (saved at `paths`) with the checkpoint: rejections by
    source and by kind, font digits accepted and read right; and the no-digit scores, read as one
    digit, of each group of drawings, of the MNIST digits and of the user-style digits."""
    predictor = Predictor(ckpt, device="cpu")
    drawing_paths, digit_paths = paths["drawings"], paths["digits"]
    answers, digit_answers = read(predictor, drawing_paths), read(predictor, digit_paths)
    by_source, by_kind = defaultdict(list), defaultdict(list)
    for (source, kind, _), p in zip(made, answers):
        by_source[source].append(rejected(p))
        by_kind[kind if source == "second hand" else f"{kind} (kept fonts)"].append(rejected(p))
    right = [not rejected(p) and p.answer.digit == d for (d, _), p in zip(digits, digit_answers)]
    scores = no_digit_scores(predictor, drawing_paths)
    groups = defaultdict(list)
    for (source, kind, _), s in zip(made, scores):
        groups[source].append(s)
        if source == "second hand" and kind in UNNAMED:
            groups["second hand, kinds never named"].append(s)
    groups["handwriting-font digits"] = list(no_digit_scores(predictor, digit_paths))
    mnist, user = (no_digit_scores(predictor, paths[name]) for name in ("mnist", "user"))
    accepted = [not rejected(p) for p in digit_answers]
    return by_source, by_kind, accepted, right, groups, mnist, user


def threshold_free(name: str, groups: dict, mnist: np.ndarray, user: np.ndarray) -> None:
    """Print each group's AUROC against the MNIST digits and its share past the threshold that
    accepts ACCEPT of them."""
    cut = float(np.quantile(mnist, ACCEPT, method="higher"))
    print(
        f"\n{name}: threshold {cut:.4f} accepts {100 * np.mean(mnist <= cut):.1f}% of "
        f"{len(mnist)} MNIST test digits (PNG)\n"
        f"\n| pictures | count | AUROC vs MNIST digits | rejected at {100 * ACCEPT:.1f}% accepted |"
        "\n|---|---:|---:|---:|"
    )
    # every drawing once: the unnamed kinds are a part of the second hand's
    drawings = [
        s
        for source, scores in groups.items()
        if "digits" not in source and "never named" not in source
        for s in scores
    ]
    rows = {**groups, "all drawings": drawings}
    for source, scores in rows.items():
        scores = np.asarray(scores)
        if "digits" in source:
            print(
                f"| {source} (accepted) | {len(scores)} | | {100 * np.mean(scores <= cut):.1f}% |"
            )
        else:
            print(
                f"| {source} | {len(scores)} | {auroc(mnist, scores):.3f} | "
                f"{100 * np.mean(scores > cut):.1f}% |"
            )
    print(f"| user-style digits (accepted) | {len(user)} | | {100 * np.mean(user <= cut):.1f}% |")


def table(title: str, columns: list[str], groups: list[dict[str, list[bool]]]) -> None:
    print(
        f"\n| {title} | pictures | "
        + " | ".join(columns)
        + " |\n|---|---:|"
        + "---:|" * len(columns)
    )
    for name, flags in groups[0].items():
        shares = " | ".join(f"{100 * np.mean(g[name]):.1f}%" for g in groups)
        print(f"| {name} | {len(flags)} | {shares} |")


def main() -> None:
    """Score rejection per evaluate-only source and per kind, then font digits' acceptance, with the
    checkpoint."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True)
    parser.add_argument(
        "--per-kind", type=int, default=20, help="doodles per kind; glyphs: a tenth per character"
    )
    parser.add_argument("--digits", type=int, default=300, help="handwriting-font digits")
    parser.add_argument("--mnist", type=int, default=2000, help="MNIST test digits as PNG files")
    parser.add_argument("--data", default=os.environ.get("DATA_DIR", "data"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    made, digits = sources(args.per_kind, rng), font_digits(args.digits, rng)
    with tempfile.TemporaryDirectory() as tmp:
        ckpts = {"rejected": args.ckpt}
        # the same pages for every checkpoint
        pages = np.random.default_rng(args.seed + 1)
        paths = {
            "drawings": save([d for _, _, d in made], Path(tmp) / "drawings", pages),
            "digits": save([d for _, d in digits], Path(tmp) / "digits", pages),
        }
        mnist_folder = Path(tmp) / "mnist"
        paths["mnist"], paths["user"] = digit_files(args.data, args.mnist, mnist_folder, args.seed)
        runs = [score(c, made, digits, paths) for c in ckpts.values()]
    print(f"Checkpoint {args.ckpt}")
    table("evaluate-only source", list(ckpts), [r[0] for r in runs])
    table("kind", list(ckpts), [r[1] for r in runs])
    for name, (by_source, by_kind, accepted, right, *_) in zip(ckpts, runs):
        every = [r for flags in by_source.values() for r in flags]
        unnamed = [r for k in UNNAMED for r in by_kind[k]]
        print(
            f"\n{name}: **all evaluate-only sources {100 * np.mean(every):.1f}% of {len(every)}**; "
            "doodle kinds the "
            f"reported failures never named {100 * np.mean(unnamed):.1f}% of {len(unnamed)}; "
            "handwriting-font "
            f"digits {100 * np.mean(accepted):.1f}% accepted, {100 * np.mean(right):.1f}% read "
            "right (a rejected "
            f"digit counts wrong), of {len(right)}"
        )

    for name, run in zip(ckpts, runs):
        threshold_free(name, *run[4:])


if __name__ == "__main__":
    main()
