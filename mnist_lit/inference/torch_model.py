"""The network as an answer needs it: grey pixels in [0, 1] in; calibrated digit probabilities, and the probability
that the picture holds no digit, out. predict.py and serve.py run this module on a checkpoint, and export.py writes
this very graph to ONNX, so both ways of running a model give the same answers.

Try it: python predict.py image=path/to/pictures/ ckpt=outputs/runs/<run>/checkpoints/best.ckpt
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from mnist_lit import NUM_CLASSES, MnistLitError, checkpoints, devices
from mnist_lit.models import not_digit_probability, rebuild


class Scorer(nn.Module):
    """A checkpoint's network with its input normalization and its fitted temperature built in."""

    def __init__(self, net: nn.Module, mean: float, std: float, temperature: float, not_digit: bool) -> None:
        super().__init__()
        self.net, self.mean, self.std, self.temperature, self.not_digit = net, mean, std, temperature, not_digit

    @classmethod
    def of(cls, ckpt: dict[str, Any], path: str | os.PathLike = "checkpoint") -> Scorer:
        """The scorer of a checkpoint read with `checkpoints.read`, in eval mode (dropout off)."""
        mean, std = checkpoints.normalization(ckpt)
        net = rebuild(ckpt, path)
        not_digit = bool(ckpt["hyper_parameters"].get("not_digit"))
        return cls(net, mean, std, checkpoints.calibration(ckpt).temperature, not_digit).eval()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, 28, 28) pixels in [0, 1] -> (B, 10) calibrated digit probabilities, and with the network's
        not-a-digit output, (B,) probabilities of holding no digit (that output's softmax share, not scaled by T)."""
        logits = self.net((pixels - self.mean) / self.std).float()  # normalized exactly as the training data was
        probs = torch.softmax(logits[:, :NUM_CLASSES] / self.temperature, dim=1)
        return (probs, not_digit_probability(logits)) if self.not_digit else probs


class TorchModel:
    """A checkpoint's Scorer on a torch device: predict.py's and serve.py's model for a .ckpt file."""

    def __init__(self, path: str | os.PathLike, device: str = "auto", threads: int = 0) -> None:
        ckpt = checkpoints.read(path)
        self.calibration = checkpoints.calibration(ckpt)
        self.device = resolve_device(device)
        if threads:  # one serving process per core: torch's own threads would only fight the other processes
            torch.set_num_threads(threads)
        # NHWC: oneDNN's convolutions are faster on CPU in this layout, as in training
        self.scorer = Scorer.of(ckpt, path).to(self.device, memory_format=torch.channels_last)

    @torch.inference_mode()
    def scores(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, 10) calibrated digit probabilities and (N,) probabilities of no digit (None without that output)
        for (N, 1, 28, 28) float32 pixels in [0, 1]."""
        x = torch.from_numpy(pixels).to(self.device).contiguous(memory_format=torch.channels_last)
        out = self.scorer(x)
        probs, no_digit = out if isinstance(out, tuple) else (out, None)
        return probs.cpu().numpy(), None if no_digit is None else no_digit.cpu().numpy()


def resolve_device(device: str) -> torch.device:
    """The torch device of a `device` setting (mnist_lit.devices); an explicit device must exist."""
    device = devices.resolve(device, torch.cuda.is_available)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MnistLitError(f"device={device} but no CUDA device is available; use device=cpu or device=auto")
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise MnistLitError(f"device={device} is not a device torch knows ({err})") from None
