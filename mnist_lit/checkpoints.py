"""Checkpoints: finding the newest one, reading it safely, rebuilding its network, and writing files atomically.

Try it: pytest tests/test_checkpoints.py
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from mnist_lit import MnistLitError
from mnist_lit.answer import Calibration
from mnist_lit.models import build_net, net_settings

BEST = "best.ckpt"  # the best epoch by val/acc: what predict.py and evaluate.py use
RESUMABLE = ("last.ckpt", "interrupted.ckpt")  # written at each epoch's end, and when a run is stopped
REQUIRED = {"arch", "mean", "std"}  # hyperparameters every mnist-lit checkpoint has: network and normalization


def newest(root: str | os.PathLike, names: Sequence[str] = (BEST,)) -> Path:
    """The most recently written checkpoint called one of `names` in any run under `root` (runs and sweeps)."""
    pattern = os.path.join(glob.escape(str(root)), "**", "checkpoints")
    found = [Path(p) for name in names for p in glob.glob(os.path.join(pattern, name), recursive=True)]
    if not found:
        raise MnistLitError(
            f"no checkpoint ({' or '.join(names)}) found under {root}/; train with `python train.py` or pass its path"
        )
    return max(found, key=lambda p: p.stat().st_mtime)


def existing(path: str | os.PathLike, setting: str = "ckpt") -> Path:
    """`path` as a Path, checked to be a file; the error names the `setting` the user gave it with."""
    found = Path(path).expanduser()
    if not found.is_file():
        raise MnistLitError(f"{setting}={path} does not exist; give a .ckpt file written by `python train.py`")
    return found


def read(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's contents, loaded with weights_only=True: a checkpoint someone sent you cannot run code."""
    path = existing(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a bad file; each means the same to the user
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise MnistLitError(f"{path} is not a readable checkpoint (corrupt, truncated or unsafe): {first}") from None
    hp = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not isinstance(hp, dict) or not isinstance(ckpt.get("state_dict"), dict) or not hp.keys() >= REQUIRED:
        raise MnistLitError(f"{path} is not an mnist-lit checkpoint (no network settings in it)")
    return ckpt


def normalization(ckpt: dict[str, Any]) -> tuple[float, float]:
    """(mean, std) that the checkpoint's network expects its [0, 1] input to be normalized with."""
    hp = ckpt["hyper_parameters"]
    return float(hp["mean"]), float(hp["std"])


def calibration(ckpt: dict[str, Any]) -> Calibration:
    """The temperature and rejection threshold fitted when the checkpoint was trained; older checkpoints have
    neither: T = 1, and no rejection unless the network has its not-a-digit output."""
    stored = ckpt.get("calibration") or {}
    threshold = stored.get("not_digit") if ckpt["hyper_parameters"].get("not_digit") else None
    return Calibration(float(stored.get("temperature", 1.0)), None if threshold is None else float(threshold))


def network(ckpt: dict[str, Any], path: str | os.PathLike = "checkpoint") -> nn.Module:
    """The plain nn.Module rebuilt from the checkpoint's stored settings and weights, in eval mode."""
    hp = ckpt["hyper_parameters"]
    try:
        net = build_net(hp["arch"], **net_settings(hp["arch"], hp))
        net.load_state_dict({k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")})
    except (MnistLitError, RuntimeError, TypeError) as err:
        first = str(err).strip().splitlines()[0]
        raise MnistLitError(f"{path} does not hold an mnist-lit network: {first}") from None
    return net.eval()


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Write `path` through a temporary file beside it, flushed to disk, then renamed over it: a kill at any moment
    leaves the old file or the new one, never a torn one; parallel writers never see each other's halves."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # after a failed write: no half-written file left behind


def write_json(path: str | os.PathLike, data: dict[str, Any]) -> None:
    """`data` as indented JSON, written atomically."""
    atomic_write(path, lambda f: f.write((json.dumps(data, indent=2, sort_keys=True) + "\n").encode()))
