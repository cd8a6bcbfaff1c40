"""The tiny fixed model that the wiring tests use, with its ONNX twin, its pictures and its recorded
answers.

Run: DATA_DIR=../shared/data .venv/bin/python tests/assets/make_tiny_model.py

It trains a small CNN (8 and 16 channels, 32 hidden units) for one epoch on the real MNIST from a
fixed seed, exports it, draws the pictures and records predict.py's jsonl answers for both files.
The tests check that predict.py, the API, the drawing pad and the ONNX export give exactly these
answers: how they are wired, not how good a model is. Run it again only when the answer format or
the checkpoint format changes on purpose.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ASSETS = Path(__file__).resolve().parent
ROOT = ASSETS.parents[1]
sys.path.insert(0, str(ROOT))

from mnist_lit.data.idx import load_split  # noqa: E402
from mnist_lit.reading.samples import seven, write_pictures  # noqa: E402

CKPT, ONNX, PICTURES = "tiny.ckpt", "tiny.onnx", "pictures"
# user-style renderings larger than this are left out: the repo stays small
MAX_PICTURE_BYTES = 40_000
SEED = 0
NET = ("model.conv1=8", "model.conv2=16", "model.fc=32")
# user-style renderings of the first MNIST test digits, before the large ones go
MNIST_PICTURES = 24


def script(name: str, *args: str, cwd: Path) -> str:
    """Run one of the entry points as a user does; its stdout, or exit with its stderr."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / name), *args], capture_output=True, text=True, cwd=cwd
    )
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def main() -> None:
    """Train, export, draw and record."""
    data = os.environ.get("DATA_DIR", str(ROOT / "data"))
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        script(
            "train.py",
            *NET,
            f"seed={SEED}",
            "trainer.max_epochs=1",
            "trainer.accelerator=cpu",
            "trainer.devices=1",
            "trainer.precision=32-true",
            "trainer.deterministic=true",
            "logger=none",
            f"data.root={data}",
            "callbacks.progress_bar.refresh_rate=0",
            f"hydra.run.dir={run}",
            cwd=Path(tmp),
        )
        shutil.copy(run / "checkpoints" / "best.ckpt", ASSETS / CKPT)
    script(
        "export.py",
        f"ckpt={ASSETS / CKPT}",
        f"out={ASSETS / ONNX}",
        "force=true",
        f"paths.data={data}",
        cwd=ASSETS,
    )
    pictures = ASSETS / PICTURES
    shutil.rmtree(pictures, ignore_errors=True)
    images, labels = load_split(data, "test")
    write_pictures(
        images[:MNIST_PICTURES].numpy(), labels[:MNIST_PICTURES].tolist(), pictures, seed=SEED
    )
    for path in pictures.iterdir():
        if path.stat().st_size > MAX_PICTURE_BYTES:
            path.unlink()
    seven().save(pictures / "pen_seven.png")
    # each file's answers, recorded apart: torch and onnxruntime may differ in a probability's sixth
    # decimal
    for model in (CKPT, ONNX):
        answers = script(
            "predict.py", f"image={pictures}", f"ckpt={ASSETS / model}", "format=jsonl", cwd=ASSETS
        )
        (ASSETS / f"answers-{Path(model).suffix[1:]}.jsonl").write_text(
            answers.replace(f"{pictures}/", "")
        )
    sizes = ", ".join(
        f"{p.name} {p.stat().st_size / 1e3:.0f} KB" for p in (ASSETS / CKPT, ASSETS / ONNX)
    )
    print(f"wrote {sizes}, {len(list(pictures.iterdir()))} pictures and their answers")


if __name__ == "__main__":
    main()
