"""Binary ink on a canvas SUPERSAMPLE times the field's resolution, the way MNIST itself was made:
polylines rasterized and widened, digits lifted back to strokes, drawings bent and overlapped, then
laid out in the 28x28 field as mnist_lit.reading.preprocess lays out a user's picture. The negatives
and the restroked digits of training are made with these.

Try it: pytest tests/data/synthetic/test_negatives.py
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from mnist_lit import IMAGE_SIZE
from mnist_lit.reading.preprocess import BOX, COM_CENTRE

# canvas pixels per field pixel: binary ink averaged over 3x3 gives MNIST-like grey edges
SUPERSAMPLE = 3
# the drawing canvas's side (84)
HI = IMAGE_SIZE * SUPERSAMPLE
# points drawn along each segment: close enough that the widened line has no gaps
SPLATS_PER_SEGMENT = 64
# rotation of each drawing before it is laid out
WARP_DEGREES = 25.0
# largest elastic displacement, in canvas halves
ELASTIC = 0.1
# share of the canvas side that a drawing spans, leaving room to rotate and bend it
FILL = 0.7
# MNIST's mean stroke width (preprocess.MNIST_STROKE) in canvas pixels
MNIST_PEN = 2.35 * SUPERSAMPLE
# strokes are drawn this many times MNIST_PEN wide
PEN_RANGE = (0.4, 1.25)
# strokes and shapes are at least this wide for their height (or the other way round)
MIN_ASPECT = 0.4
# drawings made per tensor op; bounds memory at (CHUNK, 1, HI, HI)
CHUNK = 512
# the faintest ink kept by a re-read picture lies up to this far up
RELEVEL_CUT = 0.45
# and its strokes are brightened up to this much
RELEVEL_GAIN = 1.8
# the smooth waves that a hand's wobble is made of
WOBBLE_WAVES = 2


def uniform(
    n: int, lo: float, hi: float, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """(N,) uniform draws in [lo, hi), made on the CPU generator and moved to `device`."""
    return (torch.rand(n, generator=generator) * (hi - lo) + lo).to(device)


def widen(ink: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Grow (N, 1, H, W) binary ink by steps (N,) pixels on every side (negative: shrink),
    alternating square and cross neighbourhoods so that a dot grows into an octagon rather than a
    square."""
    if not len(steps):
        return ink
    # sorted by how far each grows, step s works on the prefix that still needs it, not on all N
    order = torch.argsort(steps.abs(), descending=True)
    ink, size = ink[order], steps.abs()[order]
    # shrinking ink = growing the paper
    sign = torch.where(steps[order] > 0, 1.0, -1.0).to(ink).view(-1, 1, 1, 1)
    needing = (
        (size.view(-1, 1) >= torch.arange(1, int(size[0]) + 1, device=size.device)).sum(0).tolist()
    )
    for step, m in enumerate(needing, start=1):
        ink[:m] = sign[:m] * _grow(sign[:m] * ink[:m], square=step % 2 == 1)
    out = torch.empty_like(ink)
    out[order] = ink
    return out


def _grow(ink: torch.Tensor, square: bool) -> torch.Tensor:
    """Max over each pixel's 3x3 (square) or 4-neighbour (cross) neighbourhood, as shifted maxima:
    several times cheaper than max_pool2d on CPU."""
    p = F.pad(ink, (1, 1, 1, 1))
    # (N, 1, H + 2, W)
    across = torch.maximum(torch.maximum(p[..., :, :-2], p[..., :, 2:]), p[..., :, 1:-1])
    if square:
        return torch.maximum(
            torch.maximum(across[..., :-2, :], across[..., 2:, :]), across[..., 1:-1, :]
        )
    return torch.maximum(torch.maximum(p[..., :-2, 1:-1], p[..., 2:, 1:-1]), across[..., 1:-1, :])


def rasterize(
    points: torch.Tensor, pen: torch.Tensor, width: torch.Tensor, side: int = HI
) -> torch.Tensor:
    """Polylines as binary strokes: points (N, P, 2) in [0, 1]^2 (x, y), pen (N, P - 1) True where a
    segment is drawn, width (N,) in pixels -> (N, 1, side, side) in {0, 1}. Dense points along each
    segment mark a hairline, which `widen` thickens: O(points + pixels), not their product."""
    n = points.shape[0]
    t = torch.linspace(0, 1, SPLATS_PER_SEGMENT, device=points.device).view(1, 1, -1, 1)
    # (N, S, 1, 2) segment ends
    a, b = points[:, :-1, None], points[:, 1:, None]
    # (N, S * M, 2) pixel indices
    dense = ((a + t * (b - a)).reshape(n, -1, 2) * side).floor().long()
    drawn = pen[..., None].expand(-1, -1, SPLATS_PER_SEGMENT).reshape(n, -1)
    x, y = dense[..., 0], dense[..., 1]
    inside = drawn & (x >= 0) & (x < side) & (y >= 0) & (y < side)
    hairline = torch.zeros(n, side * side, device=points.device)
    index = y.clamp(0, side - 1) * side + x.clamp(0, side - 1)
    hairline.scatter_reduce_(1, index, inside.float(), reduce="amax")
    return widen(hairline.view(n, 1, side, side), ((width - 1) / 2).round().long())


def pack(drawings: list[list[np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Drawings, each a list of strokes (K, 2), as polylines for `draw`: points (N, P, 2) and pen
    (N, P - 1), True where a segment is drawn; a pen-up segment joins one stroke to the next, and
    short drawings repeat their last point."""
    size = max(sum(len(stroke) for stroke in drawing) for drawing in drawings)
    points, pen = (
        np.zeros((len(drawings), size, 2), np.float32),
        np.zeros((len(drawings), size - 1), bool),
    )
    for i, drawing in enumerate(drawings):
        at = 0
        for stroke in drawing:
            points[i, at : at + len(stroke)] = stroke
            pen[i, at : at + len(stroke) - 1] = True
            at += len(stroke)
        points[i, at:] = points[i, at - 1]
    return torch.from_numpy(points), torch.from_numpy(pen)


def draw(
    points: torch.Tensor,
    pen: torch.Tensor,
    generator: torch.Generator,
    device: torch.device,
    pen_range: tuple[float, float] = PEN_RANGE,
    turn: float = math.pi,
    shear: float = 0.0,
    wobble: float = 0.0,
    min_aspect: float = MIN_ASPECT,
) -> torch.Tensor:
    """Polylines (N, P, 2) with pen (N, P - 1) as binary ink (N, 1, HI, HI): each turned up to
    `turn` radians either way, slanted up to `shear`, bent by a smooth wobble up to `wobble` of its
    size, stretched a little, then squeezed into FILL of the canvas keeping its aspect ratio (at
    least `min_aspect`), drawn with a pen of pen_range times MNIST_PEN."""
    n = points.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * turn
    rot = torch.stack(
        [torch.cos(angle), -torch.sin(angle), torch.sin(angle), torch.cos(angle)], -1
    ).view(n, 2, 2)
    slant = torch.zeros(n, 2, 2)
    # x moves with y: an italic
    slant[:, 1, 0] = (torch.rand(n, generator=generator) * 2 - 1) * shear
    aspect = torch.exp(torch.randn(n, 1, 2, generator=generator) * 0.25)
    lo, hi = points.amin(1, keepdim=True), points.amax(1, keepdim=True)
    # longer side 1, centred
    unit = (points - (lo + hi) / 2) / (hi - lo).amax(-1, keepdim=True).clamp_min(1e-6)
    # a hand drifts smoothly: a few random waves across the drawing move every point a little
    if wobble:
        freq = torch.randn(n, WOBBLE_WAVES, 2, generator=generator) * 2
        phase = torch.rand(n, WOBBLE_WAVES, 1, generator=generator) * 2 * math.pi
        amp = (torch.rand(n, WOBBLE_WAVES, 2, generator=generator) * 2 - 1) * wobble
        # (N, P, waves)
        waves = torch.sin(2 * math.pi * unit @ freq.transpose(1, 2) + phase.transpose(1, 2))
        unit = unit + waves @ amp
    points = (unit @ (rot + slant @ rot)) * aspect
    lo, hi = points.amin(1, keepdim=True), points.amax(1, keepdim=True)
    extent = (hi - lo).clamp_min(1e-3)
    # a thin sliver would be scaled up into a stroke like a 1: stretch the short side to min_aspect
    # of the long
    longest = extent.amax(-1, keepdim=True)
    points = (points - (lo + hi) / 2) * (
        torch.maximum(extent, min_aspect * longest) / extent
    ) / longest * FILL + 0.5
    width = MNIST_PEN * uniform(n, *pen_range, generator, device)
    return torch.cat(
        [
            rasterize(*part)
            for part in zip(*(v.split(CHUNK) for v in (points.to(device), pen.to(device), width)))
        ]
    )


def relevel(pictures: torch.Tensor, share: float) -> torch.Tensor:
    """Pictures (N, 1, H, W) in [0, 1], `share` of them at random re-inked as reading a picture inks
    them (mnist_lit.reading.preprocess.clean): ink fainter than a cut is dropped, the rest
    brightened and clipped. A picture read from a file has crisper edges than MNIST's; without this,
    the crispness itself reads as "not a digit" (a picture of an MNIST test digit was rejected 1
    time in 40)."""
    n = pictures.shape[0]
    chosen = (torch.rand(n, 1, 1, 1) < share).to(pictures.device)
    cut = (torch.rand(n, 1, 1, 1) * RELEVEL_CUT).to(pictures)
    gain = (1 + torch.rand(n, 1, 1, 1) * (RELEVEL_GAIN - 1)).to(pictures)
    reread = torch.where(
        pictures >= cut, (pictures * gain).clamp_max(1.0), torch.zeros_like(pictures)
    )
    return torch.where(chosen, reread, pictures)


def lift(digits: torch.Tensor) -> torch.Tensor:
    """(N, 1, 28, 28) digits in [0, 1] -> binary ink (N, 1, HI, HI): the pen strokes that MNIST
    averaged down."""
    return (F.interpolate(digits, size=(HI, HI), mode="bilinear", align_corners=False) >= 0.5).to(
        digits.dtype
    )


def affine_grid(theta: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """F.affine_grid(theta, (N, C, H, W), align_corners=False) for theta (N, 2, 3): the sampling
    grid (N, H, W, 2). Built by broadcasting, because affine_grid's batched matmul costs several
    times the grid_sample that uses it."""
    h, w = size
    # pixel i's centre in [-1, 1] units
    xs = ((2 * torch.arange(w, device=theta.device, dtype=theta.dtype) + 1) / w - 1).view(
        1, 1, w, 1
    )
    ys = ((2 * torch.arange(h, device=theta.device, dtype=theta.dtype) + 1) / h - 1).view(
        1, h, 1, 1
    )
    # (N, 1, 3, 2): the x, y and 1 columns of theta, as rows
    rows = theta.transpose(1, 2).unsqueeze(1)
    # one full-size add, (N, H, W, 2)
    return (xs * rows[:, :, 0:1] + rows[:, :, 2:3]) + ys * rows[:, :, 1:2]


def overlaps(ink: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pairs of digits (N, 1, HI, HI) of binary ink drawn over each other, a few pixels apart; the
    partner is shrunk a little and may stick out of the canvas, so that some pairs hold only a piece
    of it."""
    n = ink.shape[0]
    partner = ink[torch.randperm(n, generator=generator).to(ink.device)]
    theta = torch.zeros(n, 2, 3)
    # >1: the partner is smaller
    theta[:, 0, 0] = theta[:, 1, 1] = 1 + torch.rand(n, generator=generator) * 0.4
    # up to 30% of the canvas either way
    theta[:, :, 2] = (torch.rand(n, 2, generator=generator) * 2 - 1) * 0.6
    grid = affine_grid(theta.to(ink), ink.shape[-2:])
    return torch.maximum(ink, F.grid_sample(partner, grid, mode="nearest", align_corners=False))


def distort(ink: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bend each drawing of binary ink (N, 1, HI, HI): a rotation, an elastic wobble (a smooth
    random displacement field), and thicker or thinner strokes; the result is binary ink again."""
    n, device = ink.shape[0], ink.device
    angle = torch.deg2rad(uniform(n, -WARP_DEGREES, WARP_DEGREES, generator, device))
    theta = torch.stack(
        [
            torch.stack([angle.cos(), -angle.sin(), 0 * angle], 1),
            torch.stack([angle.sin(), angle.cos(), 0 * angle], 1),
        ],
        1,
    )
    strength = uniform(n, 0.0, ELASTIC, generator, device).view(n, 1, 1, 1)
    field = torch.randn(n, 2, 4, 4, generator=generator).to(ink) * strength
    field = F.interpolate(field, size=ink.shape[-2:], mode="bilinear", align_corners=False).permute(
        0, 2, 3, 1
    )
    grid = affine_grid(theta.to(ink), ink.shape[-2:]) + field
    bent = (
        F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=False) >= 0.5
    ).to(ink)
    # up to two canvas pixels more or less on each side: strokes up to 4/3 of a field pixel thinner
    # or thicker
    return widen(bent, torch.randint(-2, 3, (n,), generator=generator).to(device))


def fit_field(ink: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) ink, 0 where there is none -> (N, 1, 28, 28) on the same scale, laid out as
    preprocess lays out a picture: the ink's bounding box scaled to a 20 px longer side, its centre
    of mass at MNIST's centre, each field pixel the average of the ink under it (sampled SUPERSAMPLE
    x SUPERSAMPLE times)."""
    n, _, h, w = ink.shape
    # (N, H), (N, W); ink is never negative: > 0 means "has ink"
    rows, cols = ink[:, 0].sum(2), ink[:, 0].sum(1)
    ys, xs = torch.arange(h, device=ink.device), torch.arange(w, device=ink.device)

    def span(along: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        lo = torch.where(along, idx, idx.numel()).amin(1)
        hi = torch.where(along, idx, -1).amax(1)
        return (hi - lo + 1).clamp_min(1).float()

    # field pixels per canvas pixel
    scale = BOX / torch.maximum(span(rows > 0, ys), span(cols > 0, xs))
    mass = rows.sum(1).clamp_min(1e-6)
    cy, cx = (rows * ys).sum(1) / mass, (cols * xs).sum(1) / mass
    theta = torch.zeros(n, 2, 3, device=ink.device)
    theta[:, 0, 0] = IMAGE_SIZE / (scale * w)
    theta[:, 1, 1] = IMAGE_SIZE / (scale * h)
    # canvas pixels between the field's middle and its COM
    offset = (IMAGE_SIZE / 2 - 0.5 - COM_CENTRE) / scale
    theta[:, 0, 2] = (2 * (cx + offset) + 1) / w - 1
    theta[:, 1, 2] = (2 * (cy + offset) + 1) / h - 1
    size = IMAGE_SIZE * SUPERSAMPLE
    grid = affine_grid(theta.to(ink), (size, size))
    fine = F.grid_sample(ink, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return F.avg_pool2d(fine, SUPERSAMPLE)
