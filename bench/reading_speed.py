"""How fast pictures are read, side by side for two checkouts of this project (today's code and
another), in one run, alternating: one-picture `predict.py` wall-clock, folder throughput on
user-style digits, and the work per 12 MP phone photo in a folder.

Run: DATA_DIR=../shared/data .venv/bin/python bench/reading_speed.py --ckpt <best.ckpt>
     --other <other checkout>   (one command; for instance `git worktree add /tmp/before <commit>`).
Each checkout runs with its own package on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from paper import Condition, fonts, make
from PIL import Image

from mnist_lit.data.idx import load_split
from mnist_lit.reading.samples import write_pictures

ROOT = Path(__file__).resolve().parents[1]
# 12 MP
PHOTO_SIZE = (4000, 3000)
# run inside a checkout: the folder's pictures read and answered with all cores (images/s), then the
# 12 MP photos
# read one after another in one process (seconds of work each)
MEASURE = """
import json, os, sys, time
from mnist_lit.inference.predictor import Predictor
from mnist_lit.inference.sources import load_pictures
ckpt, folder, photos = sys.argv[1:4]
predictor = Predictor(ckpt, device="cpu")
paths = sorted(os.path.join(folder, p) for p in os.listdir(folder))
start = time.perf_counter()
predictor.fill_answers(load_pictures(paths, os.cpu_count() or 1), predictor.thresholds("auto", 0.5))
rate = len(paths) / (time.perf_counter() - start)
big = sorted(os.path.join(photos, p) for p in os.listdir(photos))
start = time.perf_counter()
load_pictures(big, 1)
print(json.dumps({"rate": rate, "photo": (time.perf_counter() - start) / len(big)}))
"""


def twelve_megapixels(out: Path, count: int, data: tuple) -> None:
    """`count` phone photos of one digit each, scaled up to 12 MP, as JPEG."""
    images, labels = data
    rng = np.random.default_rng(0)
    out.mkdir(parents=True)
    for i in range(count):
        cond = Condition(
            ("plain", "ruled", "squared")[i % 3], ("ballpoint", "pencil")[i % 2], i % 2 == 0
        )
        j = int(rng.integers(len(images)))
        small = Image.open(io.BytesIO(make([(images[j], int(labels[j]))], cond, fonts(), rng)))
        small.resize(
            PHOTO_SIZE if small.width > small.height else PHOTO_SIZE[::-1], Image.Resampling.BICUBIC
        ).save(out / f"{i:03d}_{labels[j]}.jpg", quality=90)


def measure(checkout: Path, ckpt: str, folder: Path, photos: Path, one: Path) -> dict:
    """One round for one checkout: predict.py on one picture (wall-clock), then the folder
    figures."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    start = time.perf_counter()
    cmd = [sys.executable, "predict.py", f"image={one}", f"ckpt={ckpt}", "device=cpu"]
    subprocess.run(cmd, cwd=checkout, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, ckpt, str(folder), str(photos)],
        cwd=checkout,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return {"wall": wall, **json.loads(proc.stdout.strip().splitlines()[-1])}


def main() -> None:
    """Make the pictures, then alternate the two checkouts and print medians."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True, help="a .ckpt or .onnx model file")
    parser.add_argument("--other", type=Path, required=True, help="the checkout to compare with")
    parser.add_argument("--count", type=int, default=500, help="user-style pictures in the folder")
    parser.add_argument("--photos", type=int, default=6, help="12 MP photos")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", default=os.environ.get("DATA_DIR", "data"))
    args = parser.parse_args()
    images, labels = load_split(args.data, "test")
    data = (images.numpy(), labels.numpy())
    ckpt = str(Path(args.ckpt).resolve())
    checkouts = {"this checkout": ROOT, str(args.other): args.other.resolve()}
    with tempfile.TemporaryDirectory() as tmp:
        folder, photos = Path(tmp) / "digits", Path(tmp) / "photos"
        paths = write_pictures(
            data[0][: args.count], data[1][: args.count].tolist(), folder, seed=0
        )
        twelve_megapixels(photos, args.photos, data)
        runs: dict[str, list[dict]] = {name: [] for name in checkouts}
        # alternating, so that drifting machine speed hits both alike
        for _ in range(args.repeats):
            for name, checkout in checkouts.items():
                runs[name].append(measure(checkout, ckpt, folder, photos, paths[0]))
    print(
        f"| median of {args.repeats}, {os.cpu_count()} CPU cores | " + " | ".join(checkouts) + " |"
    )
    print("|---|" + "---:|" * len(checkouts))
    for key, label, unit in (
        ("wall", "`predict.py image=<one picture>`, wall-clock", "s"),
        ("rate", f"folder of {args.count} user-style digits", "images/s"),
        ("photo", "work per 12 MP photo, one process", "ms"),
    ):
        scale = 1000 if unit == "ms" else 1
        values = [scale * statistics.median(r[key] for r in runs[name]) for name in checkouts]
        shown = [f"{v:.2f} {unit}" if unit == "s" else f"{v:.0f} {unit}" for v in values]
        print(f"| {label} | " + " | ".join(shown) + " |")


if __name__ == "__main__":
    main()
