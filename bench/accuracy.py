"""Mean test accuracy, and calibration error before and after temperature scaling, over several
random seeds for one training setup.

Run: DATA_DIR=../shared/data .venv/bin/python bench/accuracy.py --seed 1 2 3 -- optimizer=sgd
     trainer.max_epochs=20   (one command)
Each seed is a normal `python train.py` run under outputs/bench/; the table goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_seed(seed: int, overrides: list[str], out: Path) -> dict:
    """Train once with `seed`; returns its metrics.json plus the wall-clock seconds."""
    run_dir = out / f"seed{seed}"
    start = time.perf_counter()
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        f"seed={seed}",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["wall_s"] = time.perf_counter() - start
    return metrics


def accepted(metrics: dict) -> str:
    """The share of test digits not answered "not a digit", or a dash for a network that cannot say
    it."""
    return f"{100 * metrics['test/accept']:.2f}%" if "test/accept" in metrics else "-"


def main() -> None:
    """Parse arguments, run every seed, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, nargs="+", default=[1, 2, 3], help="one run per seed")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "outputs" / "bench" / time.strftime("%Y-%m-%d_%H-%M-%S")
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides passed to train.py")
    args = parser.parse_args()
    if args.out.exists():
        parser.error(f"{args.out} exists; pick another --out")

    rows = []
    print(f"train.py {' '.join(args.overrides) or '(defaults)'}")
    print(
        "| seed | test acc | best val acc | ECE before | ECE after | accepted as digits | epochs | "
        "wall-clock |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for seed in args.seed:
        m = run_seed(seed, args.overrides, args.out)
        rows.append(m)
        acc, best = 100 * m["test/acc"], 100 * m["val/acc_best"]
        print(
            f"| {seed} | {acc:.2f}% | {best:.2f}% | {m['test/ece_raw']:.4f} | {m['test/ece']:.4f} "
            f"| {accepted(m)} | "
            f"{m['epochs']} | {m['wall_s']:.0f} s |",
            flush=True,
        )
    accs = [100 * m["test/acc"] for m in rows]
    spread = f" ± {statistics.stdev(accs):.2f}" if len(accs) > 1 else ""
    ece_raw, ece = (statistics.mean(m[k] for m in rows) for k in ("test/ece_raw", "test/ece"))
    wall = statistics.mean(m["wall_s"] for m in rows)
    print(
        f"| mean | {statistics.mean(accs):.2f}%{spread} | | {ece_raw:.4f} | {ece:.4f} | | | "
        f"{wall:.0f} s |"
    )


if __name__ == "__main__":
    main()
