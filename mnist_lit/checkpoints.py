"""Checkpoints: finding the one a command means (the given file, or the newest), and reading one
safely.

Try it: pytest tests/test_checkpoints.py

torch is imported only where a checkpoint is read: predict.py and serve.py with an ONNX model never
load it.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mnist_lit import MnistLitError, first_line
from mnist_lit.answer import Calibration

# the best epoch by val/acc: what predict.py and evaluate.py use
BEST = "best.ckpt"
# written at each epoch's end, and when a run is stopped
RESUMABLE = ("last.ckpt", "interrupted.ckpt")
# hyperparameters every mnist-lit checkpoint has: network and normalization
REQUIRED = {"arch", "mean", "std"}
# export.py's files; every other model file is read as a train.py checkpoint
ONNX_SUFFIX = ".onnx"


def newest(root: str | os.PathLike, names: Sequence[str] = (BEST,)) -> Path:
    """The most recently written checkpoint called one of `names` in any run under `root` (runs and
    sweeps)."""
    pattern = os.path.join(glob.escape(str(root)), "**", "checkpoints")
    found = [
        Path(p) for name in names for p in glob.glob(os.path.join(pattern, name), recursive=True)
    ]
    if not found:
        raise MnistLitError(
            f"no checkpoint ({' or '.join(names)}) found under {root}/; train with `python "
            "train.py` or pass its path"
        )
    return max(found, key=lambda p: p.stat().st_mtime)


def existing(path: str | os.PathLike, setting: str = "ckpt") -> Path:
    """`path` as a Path, checked to be a file; the error names the `setting` the user gave it
    with."""
    found = Path(path).expanduser()
    if not found.is_file():
        raise MnistLitError(
            f"{setting}={path} does not exist; give a .ckpt file written by `python train.py`"
            + (" or a .onnx file written by `python export.py`" if setting == "ckpt" else "")
        )
    return found


def given_or_newest(ckpt: str | os.PathLike | None, root: str | os.PathLike) -> Path:
    """The model file a command was given (checked to exist), or else the newest best.ckpt under
    `root`, named on stderr so that the user knows which one answered."""
    if ckpt:
        return existing(ckpt)
    found = newest(root)
    print(f"using checkpoint {found}", file=sys.stderr)
    return found


def read(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's contents, loaded with weights_only=True: a checkpoint someone sent you
    cannot run code."""
    import torch

    path = existing(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        # torch raises many kinds for a bad file; each means the same to the user
        raise MnistLitError(
            f"{path} is not a readable checkpoint (corrupt, truncated or unsafe): {first_line(err)}"
        ) from None
    hp = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if (
        not isinstance(hp, dict)
        or not isinstance(ckpt.get("state_dict"), dict)
        or not hp.keys() >= REQUIRED
    ):
        raise MnistLitError(f"{path} is not an mnist-lit checkpoint (no network settings in it)")
    return ckpt


def normalization(ckpt: dict[str, Any]) -> tuple[float, float]:
    """(mean, std) that the checkpoint's network expects its [0, 1] input to be normalized with."""
    hp = ckpt["hyper_parameters"]
    return float(hp["mean"]), float(hp["std"])


def calibration(ckpt: dict[str, Any]) -> Calibration:
    """The temperature and rejection threshold fitted when the checkpoint was trained; older
    checkpoints have neither: T = 1, and no rejection unless the network has its not-a-digit
    output."""
    stored = ckpt.get("calibration") or {}
    threshold = stored.get("not_digit") if ckpt["hyper_parameters"].get("not_digit") else None
    return Calibration(
        float(stored.get("temperature", 1.0)), None if threshold is None else float(threshold)
    )


def distance(ckpt: dict[str, Any]) -> dict[str, Any] | None:
    """The digits' feature statistics fitted when the checkpoint was trained (means (10, F),
    precision (F, F), limit), for the network's not-a-digit answer; None in checkpoints from before
    them or without that output."""
    stored = (ckpt.get("calibration") or {}).get("distance")
    if not stored or not ckpt["hyper_parameters"].get("not_digit"):
        return None
    return {
        "means": stored["means"].float(),
        "precision": stored["precision"].float(),
        "limit": float(stored["limit"]),
    }
