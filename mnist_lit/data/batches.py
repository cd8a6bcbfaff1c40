"""Training batches without a DataLoader: slices of a shuffled index over uint8 tensors, normalized
and (for training) warped on the device that holds them.

Try it: pytest tests/training/test_perf.py
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class RandomAffine:
    """Light augmentation, per sample: rotation, shift and zoom by up to the given amounts."""

    degrees: float = 10.0
    # as a fraction of the image side
    translate: float = 0.1
    # zoom in or out by up to this fraction
    scale: float = 0.1

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Warp a batch (B, 1, H, W) of [0, 1] images, each by its own random rotation, zoom and
        shift."""
        b = x.shape[0]

        def uniform(bound: float) -> torch.Tensor:
            return ((torch.rand(b, generator=generator) * 2 - 1) * bound).to(x.device)

        degrees, zoom = uniform(self.degrees), 1 + uniform(self.scale)
        return warp(x, degrees, zoom, uniform(self.translate), uniform(self.translate))

    def torchvision(self):
        """The same augmentation as a torchvision transform, for the torchvision loader: the same
        ranges, and the same bilinear `warp` (torchvision's default is nearest); torchvision rounds
        each shift to whole pixels."""
        from torchvision import transforms

        t, s = self.translate, self.scale
        return transforms.RandomAffine(
            self.degrees,
            translate=(t, t),
            scale=(1 - s, 1 + s),
            interpolation=transforms.InterpolationMode.BILINEAR,
        )


def warp(
    x: torch.Tensor,
    degrees: torch.Tensor,
    zoom: torch.Tensor,
    shift_x: torch.Tensor,
    shift_y: torch.Tensor,
) -> torch.Tensor:
    """Rotate, zoom and shift (in image sides) each image of (B, 1, H, W) by its own (B,) amounts,
    bilinearly; what moves in from outside is black, like MNIST's border. torchvision's
    affine(angle=-degrees, scale=zoom, translate=-shift * side, interpolation=BILINEAR) gives the
    same pixels for a rotation and zoom, and for a shift; combined, torchvision shifts after
    rotating and zooming, this before (the same ranges either way)."""
    angle = torch.deg2rad(degrees)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # affine_grid maps output to input in [-1, 1] units, so a shift of t image sides is 2t
    theta = torch.stack(
        [torch.stack([cos, -sin, 2 * shift_x], 1), torch.stack([sin, cos, 2 * shift_y], 1)], 1
    )
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class TensorBatches:
    """Batches by slicing a (shuffled) index over uint8 tensors: no per-item work and no worker
    processes. The tensors may live on the GPU; then so does every step here, normalization
    included."""

    def __init__(
        self,
        *,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        mean: float,
        std: float,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        augment: RandomAffine | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.mean, self.std = batch_size, mean, std
        self.shuffle, self.generator, self.augment = shuffle, generator, augment
        self.rank, self.world_size = rank, world_size

    def _count(self) -> int:
        n = len(self.labels)
        # training: every DDP rank must take the same number of steps, or they deadlock
        if self.shuffle:
            return n // self.world_size
        # evaluation: every sample, on exactly one rank
        return len(range(self.rank, n, self.world_size))

    def __len__(self) -> int:
        # every sample this rank serves: the last batch may be short
        return math.ceil(self._count() / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        if self.shuffle:
            # every rank draws the same permutation (its generator has the same seed), each taking
            # its own stride
            order = torch.randperm(n, generator=self.generator)[self.rank :: self.world_size][
                : self._count()
            ]
            order = order.to(self.images.device)
        elif self.world_size > 1:
            order = torch.arange(self.rank, n, self.world_size, device=self.images.device)
        else:
            order = None
        n = self._count()
        # ToTensor + Normalize, (x / 255 - mean) / std, folded into one multiply-add (unnormalize
        # undoes it)
        scale, shift = (
            1.0 / (255.0 * self.std),
            torch.tensor(-self.mean / self.std, device=self.images.device),
        )
        for start in range(0, n, self.batch_size):
            idx = (
                slice(start, start + self.batch_size)
                if order is None
                else order[start : start + self.batch_size]
            )
            # (B, 28, 28) uint8 -> (B, 1, 28, 28)
            pixels = self.images[idx].unsqueeze(1)
            # warped on [0, 1] pixels, so that what moves in is black
            if self.augment is not None:
                pixels = self.augment(pixels.float().div_(255), self.generator).mul_(255)
            # uint8 * float promotes to float32 inside the one kernel
            yield torch.add(shift, pixels, alpha=scale), self.labels[idx]


def unnormalize(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """Normalized images back to [0, 1] pixels, as the eye sees them."""
    return (x.float() * std + mean).clamp(0, 1)
