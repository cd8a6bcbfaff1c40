"""Turn MNIST *test* digits into the pictures users actually send: big canvases, off-centre, thick
or thin strokes, dark-on-light and light-on-dark, transparent PNGs, coloured ink on tinted paper,
uneven light, JPEG.

Run: DATA_DIR=../shared/data .venv/bin/python bench/user_digits.py --count 1000
Files are named <index>_<label>.<ext>; bench/predict_bench.py scores predict.py on them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mnist_lit.data.idx import load_split
from mnist_lit.reading.samples import write_pictures


def main() -> None:
    """Write --count pictures made from the first MNIST test digits."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
