"""MNIST test digits saved as 28x28 PNG files and read the way predict.py reads files: how many are
accepted as digits and read right. The network's own test/accept is measured on MNIST's tensors;
this is what a user who saves those digits as files gets.

Run: DATA_DIR=../shared/data .venv/bin/python bench/mnist_files.py --ckpt <best.ckpt>
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_lit.data.idx import load_split
from mnist_lit.inference.predictor import Predictor
from mnist_lit.inference.sources import load_pictures


def main() -> None:
    """Save a random sample of the test digits as PNG, read them, print the shares."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=os.environ.get("DATA_DIR", "data"))
    args = parser.parse_args()
    images, labels = (t.numpy() for t in load_split(args.data, "test"))
    picked = np.random.default_rng(args.seed).permutation(len(labels))[: args.count]
    predictor = Predictor(args.ckpt)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(Path(tmp) / f"{i:05d}.png") for i in picked]
        for i, path in zip(picked, paths):
            Image.fromarray(images[i]).save(path)
        read = load_pictures(paths, os.cpu_count() or 1)
    predictor.fill_answers(read, predictor.thresholds("auto", unsure=0.5))
    accepted = [not p.error and p.answer.verdict != "not a digit" for p in read]
    right = [a and p.answer.digit == labels[i] for a, p, i in zip(accepted, read, picked)]
    verdicts = Counter(p.answer.verdict if not p.error else "error" for p in read)
    print(f"Checkpoint {args.ckpt}; {len(read)} MNIST test digits as PNG files\n")
    print("| | share |\n|---|---:|")
    print(f"| accepted as digits (digit or unsure) | {100 * np.mean(accepted):.1f}% |")
    print(f"| read right (a rejected digit counts wrong) | {100 * np.mean(right):.1f}% |")
    print(f"| answered unsure | {100 * verdicts['unsure'] / len(read):.1f}% |")


if __name__ == "__main__":
    main()
