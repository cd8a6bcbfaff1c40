"""The network as an answer needs it: grey pixels in [0, 1] in; calibrated digit probabilities, and
the probability that the picture holds no digit, out. predict.py and serve.py run this module on a
checkpoint, and export.py writes this very graph to ONNX, so both ways of running a model give the
same answers.

Try it: python predict.py image=path/to/pictures/ ckpt=outputs/runs/<run>/checkpoints/best.ckpt
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from mnist_lit import NUM_CLASSES, MnistLitError, checkpoints, devices
from mnist_lit.models import feature_distance, not_digit_log_odds, rebuild, rebuild_critic


class Scorer(nn.Module):
    """A checkpoint's network with its input normalization, its fitted temperature and, where they
    were trained and fitted, its shape critic and the digits' feature statistics built in."""

    def __init__(
        self,
        net: nn.Module,
        mean: float,
        std: float,
        temperature: float,
        not_digit: bool,
        distance: dict[str, Any] | None = None,
        critic: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.mean = mean
        self.std = std
        self.temperature = temperature
        self.not_digit = not_digit
        self.critic = critic
        self.distance = distance is not None
        # buffers: they move with the module to its device, and ONNX holds them as constants
        if distance is not None:
            self.register_buffer("means", distance["means"])
            self.register_buffer("precision", distance["precision"])
            self.limit = distance["limit"]

    @classmethod
    def of(cls, ckpt: dict[str, Any], path: str | os.PathLike = "checkpoint") -> Scorer:
        """The scorer of a checkpoint read with `checkpoints.read`, in eval mode (dropout off)."""
        mean, std = checkpoints.normalization(ckpt)
        net = rebuild(ckpt, path)
        not_digit = bool(ckpt["hyper_parameters"].get("not_digit"))
        temperature = checkpoints.calibration(ckpt).temperature
        distance = checkpoints.distance(ckpt) if hasattr(net, "embed") else None
        critic = rebuild_critic(ckpt) if not_digit else None
        return cls(net, mean, std, temperature, not_digit, distance, critic).eval()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, 28, 28) pixels in [0, 1] -> (B, 10) calibrated digit probabilities, and with the
        network's not-a-digit output, (B,) probabilities of holding no digit: that output's odds
        (not scaled by T), times the distance beyond the digits' usual one in the network's
        features, times the shape critic's odds (models.not_digit_log_odds)."""
        # normalized exactly as the training data was
        x = (pixels - self.mean) / self.std
        hidden = self.net.embed(x) if self.distance else None
        logits = (self.net(x) if hidden is None else self.net.head(hidden)).float()
        probs = torch.softmax(logits[:, :NUM_CLASSES] / self.temperature, dim=1)
        if not self.not_digit:
            return probs
        distance, limit = None, 1.0
        if hidden is not None:
            distance = feature_distance(hidden.float(), self.means, self.precision)
            limit = self.limit
        critic = self.critic(x) if self.critic is not None else None
        return probs, torch.sigmoid(not_digit_log_odds(logits, distance, limit, critic))


class TorchModel:
    """A checkpoint's Scorer on a torch device: predict.py's and serve.py's model for a .ckpt
    file."""

    def __init__(self, path: str | os.PathLike, device: str = "auto", threads: int = 0) -> None:
        ckpt = checkpoints.read(path)
        self.calibration = checkpoints.calibration(ckpt)
        self.device = resolve_device(device)
        # one serving process per core: torch's own threads would only fight the other processes
        if threads:
            torch.set_num_threads(threads)
        # NHWC: oneDNN's convolutions are faster on CPU in this layout, as in training
        self.scorer = Scorer.of(ckpt, path).to(self.device, memory_format=torch.channels_last)

    @torch.inference_mode()
    def scores(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, 10) calibrated digit probabilities and (N,) probabilities of no digit (None without
        that output) for (N, 1, 28, 28) float32 pixels in [0, 1]."""
        x = torch.from_numpy(pixels).to(self.device).contiguous(memory_format=torch.channels_last)
        out = self.scorer(x)
        probs, no_digit = out if isinstance(out, tuple) else (out, None)
        return probs.cpu().numpy(), None if no_digit is None else no_digit.cpu().numpy()


def resolve_device(device: str) -> torch.device:
    """The torch device of a `device` setting (mnist_lit.devices); an explicit device must exist."""
    device = devices.resolve(device, torch.cuda.is_available)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MnistLitError(
            f"device={device} but no CUDA device is available; use device=cpu or device=auto"
        )
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise MnistLitError(f"device={device} is not a device torch knows ({err})") from None
