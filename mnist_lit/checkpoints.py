"""Checkpoints: finding the newest one, reading it safely, rebuilding its network, loading a model to predict with
(a .ckpt on torch, an exported .onnx on onnxruntime), and writing files atomically.

Try it: pytest tests/test_checkpoints.py

torch is imported only where a checkpoint is read: predict.py and serve.py with an ONNX model never load it.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import numpy as np

from mnist_lit import MnistLitError
from mnist_lit.answer import Calibration

if TYPE_CHECKING:
    from torch import nn

BEST = "best.ckpt"  # the best epoch by val/acc: what predict.py and evaluate.py use
RESUMABLE = ("last.ckpt", "interrupted.ckpt")  # written at each epoch's end, and when a run is stopped
REQUIRED = {"arch", "mean", "std"}  # hyperparameters every mnist-lit checkpoint has: network and normalization
ONNX_SUFFIX = ".onnx"  # export.py's files; every other model file is read as a train.py checkpoint


class Model(Protocol):
    """What predicting needs of a model file: its calibration, and scores for a batch of 28x28 inputs."""

    calibration: Calibration

    def scores(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, 10) calibrated digit probabilities and (N,) probabilities of no digit (None when the model has no
        such output) for (N, 1, 28, 28) float32 pixels in [0, 1]."""


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
        raise MnistLitError(
            f"{setting}={path} does not exist; give a .ckpt file written by `python train.py`"
            + (" or a .onnx file written by `python export.py`" if setting == "ckpt" else "")
        )
    return found


def load_model(path: str | os.PathLike, device: str = "auto", threads: int = 0) -> Model:
    """The model in `path`, ready to score pictures: an exported .onnx on onnxruntime (torch is never imported), any
    other file as a train.py checkpoint on torch. `threads` > 0 caps the runtime's threads (one serving process per
    core)."""
    path = existing(path)
    if path.suffix.lower() == ONNX_SUFFIX:
        from mnist_lit.onnx_model import OnnxModel

        return OnnxModel(path, device, threads)
    from mnist_lit.scoring import TorchModel

    return TorchModel(path, device, threads)


def gpu_available(path: str | os.PathLike) -> bool:
    """Whether the runtime that `path` needs (onnxruntime for .onnx, else torch) can use a CUDA GPU here."""
    if Path(path).suffix.lower() == ONNX_SUFFIX:
        from mnist_lit.onnx_model import cuda_available

        return cuda_available()
    import torch

    return torch.cuda.is_available()


def read(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's contents, loaded with weights_only=True: a checkpoint someone sent you cannot run code."""
    import torch

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
    from mnist_lit.models import build_net, net_settings

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
