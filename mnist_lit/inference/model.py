"""The model interface that answering needs, and the choice of runtime: an exported .onnx on
onnxruntime (torch is never imported), any other file as a train.py checkpoint on torch.

Try it: python predict.py image=path/to/pictures/ ckpt=model.onnx
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from mnist_lit.answer import Calibration
from mnist_lit.checkpoints import ONNX_SUFFIX, existing


class Model(Protocol):
    """What predicting needs of a model file: its calibration, and scores for a batch of 28x28
    inputs."""

    calibration: Calibration

    def scores(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, 10) calibrated digit probabilities and (N,) probabilities of no digit (None when the
        model has no such output) for (N, 1, 28, 28) float32 pixels in [0, 1]."""


def is_onnx(path: str | os.PathLike) -> bool:
    """Whether `path` names an exported model (by its suffix), which runs on onnxruntime."""
    return Path(path).suffix.lower() == ONNX_SUFFIX


def load_model(path: str | os.PathLike, device: str = "auto", threads: int = 0) -> Model:
    """The model in `path`, ready to score pictures. `threads` > 0 caps the runtime's threads (one
    serving process per core)."""
    path = existing(path)
    if is_onnx(path):
        from mnist_lit.inference.onnx_model import OnnxModel

        return OnnxModel(path, device, threads)
    from mnist_lit.inference.torch_model import TorchModel

    return TorchModel(path, device, threads)


def gpu_available(path: str | os.PathLike) -> bool:
    """Whether the runtime that `path` needs (onnxruntime for .onnx, else torch) can use a CUDA GPU
    here."""
    if is_onnx(path):
        from mnist_lit.inference.onnx_model import cuda_available

        return cuda_available()
    import torch

    return torch.cuda.is_available()
