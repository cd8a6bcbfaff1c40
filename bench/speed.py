"""Training speed on this machine: the plain-PyTorch reference against train.py, back to back, then
the speedrun.

Run: DATA_DIR=../shared/data .venv/bin/python bench/speed.py --epochs 2 --repeats 3
     --speedrun-seed 1 2 3 4 5   (one command)
Prints markdown tables (the README's figures come from here) and names the CPU or GPU used. The
machine's speed drifts, so the two sides run as --repeats back-to-back pairs and the ratio is the
median of the pairs' ratios.
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
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if "model name" in line
        ]
        model = names[0] if names else model
    return f"{model}, {os.cpu_count()} cores"


def run_train(overrides: list[str], run_dir: Path) -> dict:
    """`python train.py ...` timed from the outside; returns metrics.json plus wall_s and
    epoch_s."""
    start = time.perf_counter()
    cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run_dir}", *overrides]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["wall_s"] = time.perf_counter() - start
    metrics["epoch_s"] = epoch_seconds(run_dir)
    return metrics


def epoch_seconds(run_dir: Path) -> float | None:
    """Seconds per epoch after the first, from the wall times of the epoch-level TensorBoard
    events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    times = (
        [e.wall_time for e in acc.Scalars("train/loss")]
        if "train/loss" in acc.Tags()["scalars"]
        else []
    )
    return (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else None


REFERENCE = "plain PyTorch (torchvision DataLoader, 2 workers)"


def run_reference(epochs: int) -> dict:
    """bench/reference_plain.py timed from the outside like train.py: start-up, imports and exit
    included."""
    start = time.perf_counter()
    ref = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "reference_plain.py"), "--epochs", str(epochs)],
        check=True,
        capture_output=True,
        text=True,
    )
    measured = json.loads(ref.stdout.strip().splitlines()[-1])
    measured["wall_s"] = time.perf_counter() - start
    return measured


def print_comparison(epochs: int, runs: dict[str, list[dict]]) -> None:
    """One row per side with its median run; the ratio is the median of the back-to-back pairs'
    ratios."""
    pairs = list(zip(*runs.values())) if REFERENCE in runs else []
    ratios = [ours["wall_s"] / ref["wall_s"] for ref, ours in pairs]
    print(
        f"| {epochs} epochs, cnn, batch 64, Adam | wall-clock (median) | s/epoch | test acc | vs "
        "reference |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, side in runs.items():
        walls = sorted(m["wall_s"] for m in side)
        median = statistics.median(walls)
        # the run nearest the median
        m = min(side, key=lambda run: abs(run["wall_s"] - median))
        acc = m.get("test_acc", m.get("test/acc"))
        epoch = f"{m['epoch_s']:.1f}" if m.get("epoch_s") else "-"
        ratio = (
            "1.00x" if name == REFERENCE else f"{statistics.median(ratios):.2f}x" if ratios else "-"
        )
        spread = f" ({walls[0]:.1f}-{walls[-1]:.1f})" if len(walls) > 1 else ""
        print(
            f"| {name} | {median:.1f} s{spread} | {epoch} | {100 * acc:.2f}% | {ratio} |",
            flush=True,
        )
    if len(ratios) > 1:
        print(f"\nRatio of each back-to-back pair: {', '.join(f'{r:.2f}x' for r in ratios)}")


def main() -> None:
    """Reference vs train.py for --epochs, then experiment=speedrun for each seed."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--speedrun-seed", type=int, nargs="*", default=[1, 2, 3, 4, 5])
    parser.add_argument(
        "--repeats", type=int, default=3, help="back-to-back pairs, alternating which goes first"
    )
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    print(f"Device: {device_name()}; torch {torch.__version__}\n")

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        name = f"`python train.py trainer.max_epochs={args.epochs}`"
        sides = {
            REFERENCE: lambda i: run_reference(args.epochs),
            name: lambda i: run_train([f"trainer.max_epochs={args.epochs}"], out / f"train{i}"),
        }
        if args.skip_reference:
            del sides[REFERENCE]
        runs: dict[str, list[dict]] = {side: [] for side in sides}
        for i in range(args.repeats):
            # alternate which side goes first, so that a machine speeding up or slowing down favours
            # neither
            for side in list(sides) if i % 2 == 0 else reversed(sides):
                runs[side].append(sides[side](i))
        print_comparison(args.epochs, runs)

        if args.speedrun_seed:
            print(
                "\n| `python train.py experiment=speedrun` | wall-clock, start-up included | test "
                "acc |"
            )
            print("|---|---:|---:|")
            speedruns = []
            for seed in args.speedrun_seed:
                m = run_train(["experiment=speedrun", f"seed={seed}"], out / f"speedrun{seed}")
                speedruns.append(m)
                print(
                    f"| seed {seed} | {m['wall_s']:.1f} s | {100 * m['test/acc']:.2f}% |",
                    flush=True,
                )
            wall = statistics.mean(m["wall_s"] for m in speedruns)
            acc = statistics.mean(100 * m["test/acc"] for m in speedruns)
            print(f"| mean of {len(speedruns)} | {wall:.1f} s | {acc:.2f}% |")


if __name__ == "__main__":
    main()
