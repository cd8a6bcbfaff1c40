"""The picture loader's safety checks, and what they cost: folder throughput against the loader
without them, a decompression bomb beside a good picture, a PNG with overwritten data, and a
sideways iPhone-style HEIC.

Run: DATA_DIR=../shared/data .venv/bin/python bench/loader.py --ckpt <best.ckpt>
Prints markdown; the throughput rows alternate the two loaders, in one process, on the same
pictures.
"""

from __future__ import annotations

import argparse
import json
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
from mnist_lit.reading.pictures import PictureError, read_picture  # noqa: E402
from mnist_lit.reading.preprocess import MAX_DETAIL, preprocess  # noqa: E402
from mnist_lit.reading.samples import (  # noqa: E402
    encode,
    png_declaring,
    write_pictures,
)

EXIF_ORIENTATION = 0x0112
# EXIF orientation: the viewer turns the stored pixels 90 degrees clockwise
TURN_CLOCKWISE = 6


def unchecked(path: str) -> np.ndarray | None:
    """The loader as it was before the checks: open, reduce, decode, preprocess; None for a
    failure."""
    try:
        with Image.open(path) as img:
            img.draft(img.mode, (MAX_DETAIL, MAX_DETAIL))
            img.load()
            return preprocess(img).pixels
    except Exception:
        return None


def checked(path: str) -> np.ndarray | None:
    """mnist_lit.reading.pictures.read_picture; None for a failure."""
    try:
        return read_picture(path)
    except PictureError:
        return None


def throughput(paths: list[str], repeats: int) -> None:
    """Pictures per second of each loader, one process, alternating which goes first."""
    rates: dict[str, list[float]] = {"without the checks": [], "mnist_lit.reading.pictures": []}
    loaders = {"without the checks": unchecked, "mnist_lit.reading.pictures": checked}
    for r in range(repeats):
        for name in sorted(loaders, reverse=r % 2 == 1):
            start = time.perf_counter()
            for p in paths:
                loaders[name](p)
            rates[name].append(len(paths) / (time.perf_counter() - start))
    print(
        f"## Folder throughput: {len(paths)} user-style pictures, one process, median of "
        f"{repeats}\n"
    )
    print("| loader | pictures/s | range |\n|---|---:|---:|")
    for name, r in rates.items():
        print(f"| {name} | {statistics.median(r):.0f} | {min(r):.0f}-{max(r):.0f} |")
    ratio = statistics.median(rates["mnist_lit.reading.pictures"]) / statistics.median(
        rates["without the checks"]
    )
    print(f"\nwith the checks: {100 * ratio:.1f}% of the throughput without them\n")


def overwrite_until_it_decodes(png: bytes, out: Path, seed: int = 0) -> int:
    """Write to `out` a copy of `png` with 16 random bytes written over the middle of its compressed
    data, such that zlib still inflates it (PNG's CRCs are the only check left to catch it); returns
    how many tries it took."""
    rng = np.random.default_rng(seed)
    start = png.index(b"IDAT") + 4
    middle = start + (len(png) - start) // 2
    for tries in range(1, 1001):
        data = bytearray(png)
        data[middle : middle + 16] = rng.bytes(16)
        out.write_bytes(bytes(data))
        if unchecked(str(out)) is not None:
            return tries
    raise RuntimeError("no overwrite decoded in 1000 tries")


def predict(ckpt: str, image: Path) -> tuple[subprocess.CompletedProcess, float]:
    """predict.py on `image` as jsonl; returns the process and its own peak memory in MB (from
    wait4)."""
    cmd = [
        sys.executable,
        str(ROOT / "predict.py"),
        f"image={image}",
        f"ckpt={ckpt}",
        "format=jsonl",
        "device=cpu",
    ]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(
            cmd, child.returncode, out.read().decode(), err.read().decode()
        )
    # Linux reports KB
    return done, usage.ru_maxrss / 1024


def show(title: str, proc: subprocess.CompletedProcess, peak: float | None = None) -> None:
    """A predict.py run as the user sees it."""
    print(f"## {title}\n\n```")
    print(proc.stdout.strip())
    print(proc.stderr.strip())
    print(
        f"```\nexit status {proc.returncode}"
        + (f"; peak memory {peak:.0f} MB" if peak else "")
        + "\n"
    )


def main() -> None:
    """Throughput, then the bomb, the corrupt PNG and the HEIC through predict.py."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", default=os.environ.get("DATA_DIR", "data"))
    args = parser.parse_args()
    images, labels = load_split(args.data, "test")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = write_pictures(
            images[: args.count].numpy(), labels[: args.count].tolist(), tmp / "pics"
        )
        throughput([str(p) for p in paths], args.repeats)

        bomb = tmp / "bomb"
        bomb.mkdir()
        (bomb / "bomb.png").write_bytes(png_declaring(20000, 20000))
        good = next(p for p in paths if p.suffix == ".png")
        (bomb / good.name).write_bytes(good.read_bytes())
        show("A 20000x20000 PNG bomb beside a good picture", *predict(args.ckpt, bomb))
        print(
            f"the good picture alone: peak memory {predict(args.ckpt, bomb / good.name)[1]:.0f} "
            "MB\n"
        )

        digit = Image.fromarray(255 - images[0].numpy()).resize(
            (140, 140), Image.Resampling.BICUBIC
        )
        corrupt = tmp / "corrupt.png"
        tries = overwrite_until_it_decodes(encode(digit.convert("RGB"), "PNG"), corrupt)
        print(
            f"The digit is a {int(labels[0])}. Overwritten with random bytes until the damage "
            "still decompressed"
        )
        print(f"({tries} tries); without the checks it reads as pixels, and gets an answer.\n")
        show(
            "A PNG whose compressed data was overwritten in the middle",
            *predict(args.ckpt, corrupt)[:1],
        )

        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = TURN_CLOCKWISE
        # the sensor's pixels
        sideways = digit.convert("RGB").transpose(Image.Transpose.ROTATE_90)
        heic = tmp / "photo.heic"
        heic.write_bytes(encode(sideways, "HEIF", exif=exif.tobytes()))
        proc, _ = predict(args.ckpt, heic)
        show(
            "An iPhone-style HEIC, stored sideways with EXIF orientation 6; the digit is a "
            f"{int(labels[0])}",
            proc,
        )
        answer = json.loads(proc.stdout.splitlines()[0])
        print(f"read upright and answered correctly: {answer.get('digit') == int(labels[0])}")


if __name__ == "__main__":
    main()
