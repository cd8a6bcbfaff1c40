"""predict.py on user-style pictures: accuracy against the plain resize, and speed.

Run: DATA_DIR=../shared/data .venv/bin/python bench/predict_bench.py --ckpt <best.ckpt>
Pictures come from bench/user_digits.py (MNIST *test* digits, which the model never trained on).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mnist_lit.data.idx import load_split  # noqa: E402
from mnist_lit.inference.predictor import Prediction, Predictor  # noqa: E402
from mnist_lit.inference.sources import load_pictures  # noqa: E402
from mnist_lit.reading.samples import write_pictures  # noqa: E402


def plain_resize_accuracy(predictor: Predictor, paths: list[Path], labels: list[int]) -> float:
    """The plain approach: greyscale, resize to 28x28, classify."""
    probs, _ = predictor.scores(
        [np.asarray(Image.open(p).convert("L").resize((28, 28)), np.uint8) for p in paths]
    )
    return float(np.mean(probs.argmax(1) == np.array(labels)))


def timed(cmd: list[str]) -> tuple[float, str]:
    """Wall-clock seconds of `cmd` and its stdout (exit 1 is fine: predict.py says so when a picture
    fails)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{cmd} failed: {proc.stderr[-2000:]}")
    return seconds, proc.stdout


def wall(cmd: list[str], repeats: int) -> float:
    """Median wall-clock seconds of running `cmd`."""
    return statistics.median(timed(cmd)[0] for _ in range(repeats))


def answer_all(
    predictor: Predictor, paths: list[Path], repeats: int
) -> tuple[list[Prediction], list[float]]:
    """Load, preprocess and answer every picture, `repeats` times (a shared machine's speed drifts
    from run to run): the last round's predictions, and each round's pictures per second."""
    workers = os.cpu_count() or 1
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        predictions = load_pictures([str(p) for p in paths], workers)
        predictor.fill_answers(predictions, predictor.thresholds("auto", unsure=0.5))
        rates.append(len(paths) / (time.perf_counter() - start))
    return predictions, rates


def main() -> None:
    """Generate the pictures, then print the accuracy and speed tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", default=os.environ.get("DATA_DIR", "data"))
    args = parser.parse_args()

    images, labels = load_split(args.data, "test")
    labels = labels[: args.count].tolist()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_pictures(
            images[: args.count].numpy(), labels, Path(tmp) / "pics", seed=args.seed
        )
        predictor = Predictor(args.ckpt, device="cpu")

        workers = os.cpu_count() or 1
        predictions, rates = answer_all(predictor, paths, args.repeats)
        # a digit answered "not a digit" counts as wrong
        ok = [not p.error and p.answer.digit == y for p, y in zip(predictions, labels)]
        failed = sum(bool(p.error) for p in predictions)

        print(f"## Accuracy on {args.count} user-style pictures (seed {args.seed})\n")
        print("| method | accuracy |\n|---|---:|")
        print(f"| predict.py preprocessing | {100 * np.mean(ok):.1f}% ({failed} refused) |")
        print(
            "| plain resize to 28x28 | "
            f"{100 * plain_resize_accuracy(predictor, paths, labels):.1f}% |"
        )

        py = sys.executable
        imports = wall([py, "-c", "import torch, hydra"], args.repeats)
        one = wall(
            [py, "predict.py", f"image={paths[0]}", f"ckpt={args.ckpt}", "device=cpu"], args.repeats
        )
        cli = wall(
            [py, "predict.py", f"image={Path(tmp) / 'pics'}", f"ckpt={args.ckpt}", "device=cpu"], 1
        )
        print(f"\n## Speed ({os.cpu_count()} CPU cores, median of {args.repeats})\n")
        print("| measurement | value |\n|---|---:|")
        print(f'| `python -c "import torch, hydra"` | {imports:.2f} s |')
        print(
            f"| `python predict.py image=<one picture>` | {one:.2f} s ({one / imports:.2f}x the "
            "imports) |"
        )
        rate = statistics.median(rates)
        print(
            f"| {args.count} pictures after start-up, {workers} processes | {rate:.0f} images/s "
            f"({min(rates):.0f}-{max(rates):.0f}) |"
        )
        print(
            f"| `python predict.py image=<folder of {args.count}>`, whole command | {cli:.2f} s |"
        )


if __name__ == "__main__":
    main()
