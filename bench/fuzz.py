"""A fuzz campaign on the picture loader: thousands of damaged files per format, each of which must
end in 28x28 pixels or a one-line PictureError, never another exception or a hang.

Run: .venv/bin/python bench/fuzz.py --cases 1000
Prints a markdown table per format: cases, outcomes, crashes, the slowest case, and the
process's peak memory. tests/reading/test_pictures.py runs a few hundred such cases on every test
run; this is the long version.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mnist_lit.reading.pictures import PictureError, read_picture  # noqa: E402
from mnist_lit.reading.samples import FUZZED, encode, seven  # noqa: E402

HUGE = (b"\xff\xff\xff\xff", b"\x00\x00\xff\xff", b"\x7f\xff\x00\x00", b"\x00\x01\x00\x00")
# where most formats keep their width and height
HEADER_BYTES = 64


def damage(data: bytes, how: str, rng: np.random.Generator) -> bytes:
    """One damaged copy of a valid file: random bytes, a truncation, bit flips, or huge numbers in
    its header."""
    if how == "random":
        # sometimes the right magic number, then noise
        keep = int(rng.integers(0, 64))
        return data[:keep] + rng.bytes(int(rng.integers(0, 4096)))
    if how == "truncate":
        return data[: int(rng.integers(0, len(data)))]
    out = bytearray(data)
    if how == "flip":
        for i in rng.integers(0, len(out), int(rng.integers(1, 32))):
            out[i] ^= 1 << int(rng.integers(0, 8))
        return bytes(out)
    at = int(rng.integers(0, min(HEADER_BYTES, len(out) - 4)))
    out[at : at + 4] = HUGE[int(rng.integers(len(HUGE)))]
    return bytes(out)


def peak_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Run --cases damaged files per format and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=1000, help="damaged files per format")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    kinds = ("random", "truncate", "flip", "huge")
    print(f"start: peak memory {peak_mb():.0f} MB\n")
    print(
        "| format | cases | read as pixels | one-line errors | crashes | slowest case | peak "
        "memory |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    total_crashes = 0
    for fmt in FUZZED:
        valid = encode(seven((64, 64)), fmt)
        outcomes, slowest, crashes = Counter(), 0.0, []
        for i in range(args.cases):
            data = damage(valid, kinds[i % len(kinds)], rng)
            start = time.perf_counter()
            try:
                pixels = read_picture(data)
                outcomes["pixels" if pixels.shape == (28, 28) else "crash"] += 1
            except PictureError as err:
                outcomes["error" if str(err) and "\n" not in str(err) else "crash"] += 1
            except Exception:
                # what the loader must never let out
                outcomes["crash"] += 1
                crashes.append(traceback.format_exc(limit=3))
            slowest = max(slowest, time.perf_counter() - start)
        total_crashes += outcomes["crash"]
        print(
            f"| {fmt} | {args.cases} | {outcomes['pixels']} | {outcomes['error']} | "
            f"{outcomes['crash']} | "
            f"{1000 * slowest:.0f} ms | {peak_mb():.0f} MB |"
        )
        for crash in crashes[:3]:
            print(f"\n```\n{crash}```\n", file=sys.stderr)
    print(f"\ncrashes: {total_crashes}")
    raise SystemExit(1 if total_crashes else 0)


if __name__ == "__main__":
    main()
