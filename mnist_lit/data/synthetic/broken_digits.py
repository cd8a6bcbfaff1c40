"""Negatives made from digits: a digit's own strokes changed near their shape until they are no
digit. Mirrored, with a scalloped contour, with an extra turn drawn inside its loop, or fused with
another digit into one shape. Generic negatives (letters, scribbles) barely move the shapes that
sit next to the digits; these are drawn right beside them (Bitterwolf, Meinke & Hein, NeurIPS 2020:
what moves near-digit shapes is training close to the data).

Try it: python -m mnist_lit.data.synthetic.broken_digits outputs/broken_digits.png
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mnist_lit.data.synthetic.ink import HI, affine_grid

# digits whose mirror image is no digit (a mirrored 0, 1 or 8 is still one)
MIRRORED = (2, 3, 4, 5, 6, 7, 9)
# waves along the canvas side, and their height in canvas pixels, of a scalloped contour
SCALLOP_WAVES = (5.0, 9.0)
SCALLOP_PIXELS = (2.5, 4.5)
# digits with a loop, and the scale of the extra turn drawn inside it, about the ink's centre
LOOPED = (0, 6, 8, 9)
LOOP_SCALE = (0.5, 0.75)
# how far apart two fused digits stand, as a share of the canvas
FUSE_SHIFT = (0.18, 0.3)
KINDS = ("mirrored", "scalloped", "looped", "fused")


def _uniform(n: int, bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    lo, hi = bounds
    return lo + (hi - lo) * torch.rand(n, generator=generator)


def mirrored(ink: torch.Tensor) -> torch.Tensor:
    """Binary digit ink (N, 1, HI, HI) flipped left to right."""
    return ink.flip(-1)


def scalloped(ink: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each drawing's strokes pushed back and forth by short waves across the canvas: a zigzag
    where the digit ran smooth."""
    n = ink.shape[0]
    waves = _uniform(n, SCALLOP_WAVES, generator).view(n, 1, 1)
    # canvas pixels in grid units, [-1, 1] across the canvas
    height = (_uniform(n, SCALLOP_PIXELS, generator) * 2 / HI).view(n, 1, 1)
    phase = (torch.rand(n, 2, generator=generator) * 2 * math.pi).view(n, 1, 1, 2)
    identity = torch.zeros(n, 2, 3)
    identity[:, 0, 0] = identity[:, 1, 1] = 1
    grid = affine_grid(identity.to(ink), ink.shape[-2:])
    # x moves with y's wave and y with x's: every stroke, whatever its direction, turns wavy
    across = grid.flip(-1)
    shift = torch.sin(math.pi * waves.unsqueeze(-1) * across + phase.to(ink)) * height.unsqueeze(-1)
    bent = F.grid_sample(ink, grid + shift.to(ink), mode="bilinear", align_corners=False)
    return (bent >= 0.5).to(ink)


def looped(ink: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each drawing with a smaller copy of itself drawn inside, about its ink's centre: a loop that
    turns once more, as a spiral does."""
    n = ink.shape[0]
    coords = torch.linspace(-1, 1, HI, dtype=ink.dtype, device=ink.device)
    mass = ink[:, 0].sum((1, 2)).clamp_min(1)
    # the ink's centre in grid units, (N, 2) as (x, y)
    centre = torch.stack(
        [(ink[:, 0].sum(1) * coords).sum(1) / mass, (ink[:, 0].sum(2) * coords).sum(1) / mass], 1
    )
    scale = _uniform(n, LOOP_SCALE, generator).to(ink).view(n, 1)
    # sampling at centre + (p - centre) / scale draws the copy `scale` times as large about it
    theta = torch.zeros(n, 2, 3, dtype=ink.dtype, device=ink.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale[:, 0]
    theta[:, :, 2] = centre * (1 - 1 / scale)
    inner = F.grid_sample(ink, affine_grid(theta, ink.shape[-2:]), align_corners=False)
    return torch.maximum(ink, (inner >= 0.5).to(ink))


def fused(ink: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each drawing beside another of the batch, close enough that their strokes merge into one
    shape."""
    n = ink.shape[0]
    partner = ink[torch.randperm(n, generator=generator).to(ink.device)]
    shift = _uniform(n, FUSE_SHIFT, generator)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    # grid units: the drawing moves left by `shift` of the canvas, its partner right
    theta[:, 0, 2] = 2 * shift
    left = F.grid_sample(ink, affine_grid(theta.to(ink), ink.shape[-2:]), align_corners=False)
    theta[:, 0, 2] = -2 * shift
    right = F.grid_sample(partner, affine_grid(theta.to(ink), ink.shape[-2:]), align_corners=False)
    return (torch.maximum(left, right) >= 0.5).to(ink)


BREAKERS = {"scalloped": scalloped, "looped": looped, "fused": fused}


def broken_digits(
    ink: torch.Tensor, labels: torch.Tensor, count: int, generator: torch.Generator
) -> torch.Tensor:
    """`count` negatives (count, 1, HI, HI) made from binary digit ink (N, 1, HI, HI) and its
    labels (N,), the kinds in turn."""
    # a mirrored 0, 1 or 8 is still a digit, and a 1 or 7 has no loop to turn again: each kind
    # draws from the digits it can break, or from all where the batch has none of those
    eligible = {"mirrored": MIRRORED, "looped": LOOPED}
    made = []
    for i, kind in enumerate(KINDS):
        share = count // len(KINDS) + (i < count % len(KINDS))
        pool = torch.isin(labels.cpu(), torch.tensor(eligible.get(kind, range(10))))
        pool = pool.nonzero().flatten() if pool.any() else torch.arange(len(labels))
        part = ink[pool[torch.randint(len(pool), (share,), generator=generator)].to(ink.device)]
        made.append(mirrored(part) if kind == "mirrored" else BREAKERS[kind](part, generator))
    return torch.cat(made)


def main() -> None:
    """Write a sheet of 256 broken digits (MNIST test digits) to the path given, for looking at."""
    import os
    import sys
    from pathlib import Path

    from torchvision.utils import save_image

    from mnist_lit.data.idx import load_split
    from mnist_lit.data.synthetic.ink import fit_field, lift

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/broken_digits.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    images, labels = load_split(os.environ.get("DATA_DIR", "data"), "test")
    digits = lift(images[:512, None].float() / 255)
    made = broken_digits(digits, labels[:512], 256, torch.Generator().manual_seed(0))
    save_image(fit_field(made), out, nrow=16, pad_value=0.5)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
