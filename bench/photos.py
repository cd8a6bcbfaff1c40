"""Phone photos of paper: how many single digits and whole numbers predict.py reads right, overall
and per condition (paper kind x pen x shadow), on photos made by bench/paper.py from MNIST *test*
strokes and handwriting fonts. A digit answered "not a digit" counts as wrong. Then the figures that
reading photos must not cost: user-style digits, drawings without a digit, numbers, and MNIST test
digits accepted.

Run: DATA_DIR=../shared/data .venv/bin/python bench/photos.py --ckpt <best.ckpt>
--keep DIR keeps the photos (named <index>_<condition>_<answer>.jpg), to look at or to annotate
with predict.py;
--keep DIR --reuse reads them again instead of making new ones.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from not_digits import drawings, save
from paper import PAPERS, PENS, Condition, fonts, make
from PIL import Image
from read_numbers import exact, write_numbers

from mnist_lit.data.idx import load_split
from mnist_lit.inference.predictor import Predictor
from mnist_lit.inference.sources import load_pictures
from mnist_lit.reading.samples import write_pictures

CONDITIONS = [Condition(p, q, s) for p, q, s in itertools.product(PAPERS, PENS, (False, True))]
# numbers of 2-5 digits
NUMBER_LENGTHS = (2, 6)


def write(
    out: Path, count: int, lengths: tuple[int, int], data: tuple, seed: int
) -> list[tuple[Path, str, str]]:
    """`count` photos under out, cycling through the conditions: (path, condition, the true
    number)."""
    images, labels = data
    rng = np.random.default_rng(seed)
    here = fonts()
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(count):
        cond = CONDITIONS[i % len(CONDITIONS)]
        idx = rng.integers(0, len(images), int(rng.integers(*lengths)))
        truth = "".join(str(int(labels[j])) for j in idx)
        path = out / f"{i:05d}_{cond.name()}_{truth}.jpg"
        path.write_bytes(make([(images[j], int(labels[j])) for j in idx], cond, here, rng))
        made.append((path, cond.name(), truth))
    return made


def kept(folder: Path) -> list[tuple[Path, str, str]]:
    """The photos an earlier run left in folder with --keep: (path, condition, the true number)."""
    return [(p, p.stem.split("_")[1], p.stem.split("_")[2]) for p in sorted(folder.glob("*.jpg"))]


def score(
    predictor: Predictor, made: list[tuple[Path, str, str]]
) -> tuple[dict[str, list[bool]], float]:
    """Whether each photo was read right, by condition, and the seconds of work per photo (all
    cores)."""
    start = time.perf_counter()
    predictions = load_pictures([str(p) for p, _, _ in made], os.cpu_count() or 1)
    predictor.fill_answers(predictions, predictor.thresholds("auto", unsure=0.5))
    seconds = (time.perf_counter() - start) * (os.cpu_count() or 1) / len(made)
    right: dict[str, list[bool]] = defaultdict(list)
    for p, (_, cond, truth) in zip(predictions, made):
        fields = p.fields()
        right[cond].append(
            not p.error and fields["verdict"] != "not a digit" and fields["number"] == truth
        )
    return right, seconds


def table(title: str, right: dict[str, list[bool]]) -> None:
    """Per condition and overall, as a Markdown table."""
    print(f"\n| {title} | photos | read right |\n|---|---:|---:|")
    for cond in CONDITIONS:
        rs = right.get(cond.name(), [])
        if rs:
            print(
                f"| {cond.paper}, {cond.pen}, {'shadow' if cond.shadow else 'no shadow'} | "
                f"{len(rs)} "
                f"| {100 * np.mean(rs):.1f}% |"
            )
    for axis, values in (("paper", PAPERS), ("pen", PENS), ("shadow", ("even", "shadow"))):
        for v in values:
            rs = [r for c, x in right.items() if v in c.split("-") for r in x]
            print(f"| *{axis}: {v}* | {len(rs)} | {100 * np.mean(rs):.1f}% |")
    every = [r for rs in right.values() for r in rs]
    print(f"| **all** | {len(every)} | **{100 * np.mean(every):.1f}%** |")


def others(predictor: Predictor, data: tuple, count: int, seed: int, tmp: Path) -> None:
    """The figures that reading photos must not cost: user-style digits right, drawings without a
    digit rejected, numbers read exactly, and MNIST test digits (as 28x28 PNGs) accepted."""
    images, labels = data
    thresholds = predictor.thresholds("auto", unsure=0.5)
    workers = os.cpu_count() or 1
    rng = np.random.default_rng(seed)
    truth = labels[:count].tolist()
    digits = load_pictures(
        [str(p) for p in write_pictures(images[:count], truth, tmp / "user", seed)], workers
    )
    predictor.fill_answers(digits, thresholds)
    right = [
        not p.error and p.answer.verdict != "not a digit" and p.answer.digit == y
        for p, y in zip(digits, truth)
    ]
    saved = save(drawings(max(1, count // 30), rng), tmp / "not_digits", rng)
    drawn = load_pictures([str(p) for _, p in saved], workers)
    predictor.fill_answers(drawn, thresholds)
    rejected = [p.error is not None or p.answer.verdict == "not a digit" for p in drawn]
    numbers = write_numbers(images, labels, tmp / "numbers", count // 3, False, False, seed)
    exact_share, _ = exact(predictor, numbers, "auto")
    plain = tmp / "mnist"
    plain.mkdir()
    for i in range(count):
        # the test set's last digits
        Image.fromarray(images[-1 - i]).save(plain / f"{i:05d}.png")
    mnist = load_pictures(sorted(str(p) for p in plain.iterdir()), workers)
    predictor.fill_answers(mnist, thresholds)
    accepted = [not p.error and p.answer.verdict != "not a digit" for p in mnist]
    print("\n| other sets | pictures | figure |\n|---|---:|---:|")
    print(f"| user-style digits read right | {len(right)} | {100 * np.mean(right):.1f}% |")
    print(
        f'| drawings without a digit answered "not a digit" | {len(rejected)} | '
        f"{100 * np.mean(rejected):.1f}% |"
    )
    print(f"| numbers of 2-6 digits read exactly | {len(numbers)} | {100 * exact_share:.1f}% |")
    print(
        f"| MNIST test digits, as 28x28 PNGs, accepted | {len(accepted)} | "
        f"{100 * np.mean(accepted):.1f}% |"
    )


def main() -> None:
    """Write both photo sets, read them, print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True)
    parser.add_argument(
        "--count", type=int, default=480, help="single-digit photos (20 per condition)"
    )
    parser.add_argument("--numbers", type=int, default=240, help="photos of 2-5 digit numbers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="keep the photos in this folder")
    parser.add_argument(
        "--reuse", action="store_true", help="read the photos an earlier --keep left there"
    )
    parser.add_argument(
        "--others", type=int, default=900, help="pictures in each of the other sets; 0: none"
    )
    parser.add_argument("--data", default=os.environ.get("DATA_DIR", "data"))
    args = parser.parse_args()
    images, labels = load_split(args.data, "test")
    data = (images.numpy(), labels.numpy())
    predictor = Predictor(args.ckpt, device="cpu")
    print(f"Checkpoint {args.ckpt}; handwriting fonts found: {len(fonts())}")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        if args.reuse:
            singles, numbers = kept(root / "digits"), kept(root / "numbers")
        else:
            singles = write(root / "digits", args.count, (1, 2), data, args.seed)
            numbers = write(root / "numbers", args.numbers, NUMBER_LENGTHS, data, args.seed + 1)
        right, seconds = score(predictor, singles)
        table("single-digit photos", right)
        right_n, seconds_n = score(predictor, numbers)
        table("photos of 2-5 digit numbers, exact", right_n)
        print(
            f"\nwork per photo: {1000 * seconds:.0f} ms (digits), {1000 * seconds_n:.0f} ms "
            "(numbers)"
        )
        if args.others:
            others(predictor, data, args.others, args.seed, Path(tmp))


if __name__ == "__main__":
    main()
