"""Training speed on this machine: the plain-PyTorch reference against train.py, back to back, then the speedrun.

Run: DATA_DIR=../shared/data .venv/bin/python bench/speed.py --epochs 2 --speedrun-seeds 1 2 3 4 5
Prints markdown tables (the README's figures come from here) and names the CPU or GPU used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def device_name() -> str:
    """The GPU's name, else the CPU's model and core count."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    model = platform.processor() or "CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        model = names[0] if names else model
    return f"{model}, {os.cpu_count()} cores"


def run_train(overrides: list[str], run_dir: Path) -> dict:
    """`python train.py ...` timed from the outside; returns metrics.json plus wall_s and epoch_s."""
    start = time.perf_counter()
    cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run_dir}", *overrides]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["wall_s"] = time.perf_counter() - start
    metrics["epoch_s"] = epoch_seconds(run_dir)
    return metrics


def epoch_seconds(run_dir: Path) -> float | None:
    """Seconds per epoch after the first, from the wall times of the epoch-level TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    times = [e.wall_time for e in acc.Scalars("train/loss")] if "train/loss" in acc.Tags()["scalars"] else []
    return (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else None


def main() -> None:
    """Reference vs train.py for --epochs, then experiment=speedrun for each seed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--speedrun-seeds", type=int, nargs="*", default=[1, 2, 3, 4, 5])
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    print(f"Device: {device_name()}; torch {torch.__version__}\n")

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        rows = []
        if not args.skip_reference:
            # timed from the outside like train.py: both walls include interpreter start-up, imports and exit
            start = time.perf_counter()
            ref = subprocess.run(
                [sys.executable, str(ROOT / "bench" / "reference_plain.py"), "--epochs", str(args.epochs)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            measured = json.loads(ref.stdout.strip().splitlines()[-1])
            measured["wall_s"] = time.perf_counter() - start
            rows.append(("plain PyTorch (seed style, 2 workers)", measured))
        ours = run_train([f"trainer.max_epochs={args.epochs}"], out / "train")
        rows.append((f"`python train.py trainer.max_epochs={args.epochs}`", ours))
        print(f"| {args.epochs} epochs, cnn, batch 64, Adam | wall-clock | s/epoch | test acc | vs reference |")
        print("|---|---:|---:|---:|---:|")
        for name, m in rows:
            ratio = f"{m['wall_s'] / rows[0][1]['wall_s']:.2f}x" if not args.skip_reference else "-"
            acc = m.get("test_acc", m.get("test/acc"))
            epoch = f"{m['epoch_s']:.1f}" if m.get("epoch_s") else "-"
            print(f"| {name} | {m['wall_s']:.1f} s | {epoch} | {100 * acc:.2f}% | {ratio} |", flush=True)

        if args.speedrun_seeds:
            print("\n| `python train.py experiment=speedrun` | wall-clock, start-up included | test acc |")
            print("|---|---:|---:|")
            runs = []
            for seed in args.speedrun_seeds:
                m = run_train(["experiment=speedrun", f"seed={seed}"], out / f"speedrun{seed}")
                runs.append(m)
                print(f"| seed {seed} | {m['wall_s']:.1f} s | {100 * m['test/acc']:.2f}% |", flush=True)
            wall = statistics.mean(m["wall_s"] for m in runs)
            acc = statistics.mean(100 * m["test/acc"] for m in runs)
            print(f"| mean of {len(runs)} | {wall:.1f} s | {acc:.2f}% |")


if __name__ == "__main__":
    main()
