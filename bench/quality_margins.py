"""The real-data tests' quality rates on checkpoints trained as the tests train theirs (two epochs,
CPU, 32-bit, deterministic), one per seed: the spread across seeds is what each test's margin is
taken from.

Run: DATA_DIR=../shared/data .venv/bin/python bench/quality_margins.py --seeds 42 1 2 3
Prints one row per seed, then each rate's lowest value and spread, beside the floor the tests
assert.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mnist_lit.data.idx import load_split  # noqa: E402
from mnist_lit.inference import quality  # noqa: E402
from mnist_lit.inference.predictor import Predictor  # noqa: E402

# as tests/conftest.py's REAL_EPOCHS
EPOCHS = 2
PINNED = (
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "trainer.precision=32-true",
    "trainer.deterministic=true",
)
# as the tests draw them
DOODLES, DIGITS, FADES, USER_STYLE = 100, 1000, 50, 300


def train(seed: int, data: str, out: Path) -> dict:
    """Two epochs of the default config at `seed`: its metrics.json."""
    run = out / f"seed{seed}"
    args = [
        f"seed={seed}",
        f"trainer.max_epochs={EPOCHS}",
        *PINNED,
        f"data.root={data}",
        f"hydra.run.dir={run}",
    ]
    args.append("callbacks.progress_bar.refresh_rate=0")
    subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], check=True, capture_output=True, cwd=out
    )
    return json.loads((run / "metrics.json").read_text())


def rates(ckpt: str, data: str, folder: Path) -> dict[str, float]:
    """Every rate the real-data tests assert, for one checkpoint."""
    predictor = Predictor(ckpt, device="cpu")
    images, labels = load_split(data, "test")
    digits, targets = images.numpy(), labels.numpy()
    ones, sevens = digits[targets == 1][:FADES], digits[targets == 7][:FADES]
    found = {kind: quality.doodle_rejection(predictor, kind, DOODLES) for kind in quality.DOODLES}
    found["digits accepted"] = quality.accepted(predictor, digits[:DIGITS])
    found["1->7 fades through unsure"] = quality.fades_through_unsure(predictor, ones, sevens)
    found["user-style read right"] = quality.user_style_accuracy(
        predictor, digits[:USER_STYLE], targets[:USER_STYLE].tolist(), folder
    )
    return found


def main() -> None:
    """Train one checkpoint per seed, measure each, print the table and the spread."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3])
    parser.add_argument("--data", default=os.environ.get("DATA_DIR", "data"))
    args = parser.parse_args()
    table: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            metrics = train(seed, args.data, Path(tmp))
            table[seed] = {
                "test/acc": metrics["test/acc"],
                **rates(metrics["best_ckpt"], args.data, Path(tmp) / "u"),
            }
            print(
                f"seed {seed}: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in table[seed].items()),
                flush=True,
            )
    print("\n| rate | " + " | ".join(f"seed {s}" for s in args.seeds) + " | lowest | spread |")
    print("|---|" + "---:|" * (len(args.seeds) + 2))
    for name in table[args.seeds[0]]:
        values = [table[s][name] for s in args.seeds]
        cells = " | ".join(f"{100 * v:.1f}%" for v in values)
        print(
            f"| {name} | {cells} | {100 * min(values):.1f}% | "
            f"{100 * (max(values) - min(values)):.1f} |"
        )


if __name__ == "__main__":
    main()
