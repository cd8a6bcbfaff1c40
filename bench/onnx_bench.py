"""predict.py with an exported ONNX model against the checkpoint it came from: agreement,
one-picture wall-clock, and folder throughput, measured in the same run with the two alternating.

Run: DATA_DIR=../shared/data .venv/bin/python bench/onnx_bench.py --ckpt <best.ckpt>
Pictures come from bench/user_digits.py (MNIST *test* digits, which the model never trained on).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.predict_bench import answer_all, timed  # noqa: E402
from mnist_lit.data.idx import load_split  # noqa: E402
from mnist_lit.inference.export import export  # noqa: E402
from mnist_lit.inference.predictor import Predictor  # noqa: E402
from mnist_lit.reading.samples import write_pictures  # noqa: E402


def alternate(commands: dict[str, list[str]], repeats: int) -> dict[str, list[float]]:
    """Each command `repeats` times, taking turns, so that a drift in the machine's speed hits both
    alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, cmd in commands.items():
            times[name].append(timed(cmd)[0])
    return times


def main() -> None:
    """Export, then print the agreement and speed tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data", default=os.environ.get("DATA_DIR", "data"))
    args = parser.parse_args()

    images, labels = load_split(args.data, "test")
    with tempfile.TemporaryDirectory() as tmp:
        onnx = str(Path(tmp) / "model.onnx")
        parity = export(args.ckpt, onnx, images.numpy(), unsure=0.5)
        folder = Path(tmp) / "pics"
        paths = write_pictures(images[: args.count].numpy(), labels[: args.count].tolist(), folder)
        py, models = sys.executable, {"checkpoint": args.ckpt, "onnx": onnx}

        answers = {
            name: [
                json.loads(line)
                for line in timed(
                    [
                        py,
                        "predict.py",
                        f"image={folder}",
                        f"ckpt={model}",
                        "format=jsonl",
                        "device=cpu",
                    ]
                )[1].splitlines()
            ]
            for name, model in models.items()
        }
        same = sum(
            (a.get("verdict"), a.get("number")) == (b.get("verdict"), b.get("number"))
            for a, b in zip(answers["checkpoint"], answers["onnx"])
        )
        one = alternate(
            {
                name: [py, "predict.py", f"image={paths[0]}", f"ckpt={m}", "device=cpu"]
                for name, m in models.items()
            },
            args.repeats,
        )
        whole = alternate(
            {
                name: [py, "predict.py", f"image={folder}", f"ckpt={m}", "device=cpu"]
                for name, m in models.items()
            },
            max(1, args.repeats // 2),
        )
        rounds = max(1, args.repeats // 2)
        rate = {
            name: statistics.median(answer_all(Predictor(m, "cpu"), paths, rounds)[1])
            for name, m in models.items()
        }

    med = {name: statistics.median(t) for name, t in one.items()}
    pairs = [o / c for o, c in zip(one["onnx"], one["checkpoint"])]
    print(f"## Export parity\n\n{parity.line()}\n")
    total = len(answers["onnx"])
    print(
        f"predict.py on {args.count} user-style pictures: the same verdict and number for {same} "
        f"of {total}\n"
    )
    print(f"## Speed ({os.cpu_count()} CPU cores; median of {args.repeats}, the two alternating)\n")
    print("| measurement | ckpt=best.ckpt | ckpt=model.onnx | ratio |\n|---|---:|---:|---:|")
    print(
        f"| `predict.py image=<one picture>` | {med['checkpoint']:.2f} s | {med['onnx']:.2f} s | "
        f"**{med['onnx'] / med['checkpoint']:.2f}x** (pairs {min(pairs):.2f}-{max(pairs):.2f}) |"
    )
    w = {name: statistics.median(t) for name, t in whole.items()}
    print(
        f"| `predict.py image=<folder of {args.count}>`, whole command | {w['checkpoint']:.2f} s "
        f"({args.count / w['checkpoint']:.0f}/s) | {w['onnx']:.2f} s "
        f"({args.count / w['onnx']:.0f}/s) | "
        f"{w['onnx'] / w['checkpoint']:.2f}x |"
    )
    print(
        f"| {args.count} pictures after start-up, pictures/s | {rate['checkpoint']:.0f} | "
        f"{rate['onnx']:.0f} | "
        f"{rate['onnx'] / rate['checkpoint']:.2f}x |"
    )


if __name__ == "__main__":
    main()
