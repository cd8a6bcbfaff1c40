"""Pictures that are not digits, made on the fly, for teaching the network to answer "not a digit": letters and
symbols rendered from the fonts matplotlib ships, scribbles, polygons, grids and hatching, and overlapping digits.

Try it: python -m mnist_lit.negatives outputs/negatives.png

Everything comes out as the model sees a user's picture after mnist_lit.preprocess: white strokes on black, the
ink's bounding box scaled to a 20 px longer side, centred by mass in 28x28. A bank is made once, in batches on
the training device; each training step draws from it and warps what it draws (mnist_lit.module).
Letters that people write like digits (O and 0, l and 1, S and 5, ...) are left out: they would teach the
network to reject real digits. The families that bench/not_digits.py scores are partly held out from these.
"""

from __future__ import annotations

import importlib.util
import math
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from mnist_lit import IMAGE_SIZE
from mnist_lit.preprocess import BOX, COM_CENTRE, centre_by_mass, fit_box

# fonts bundled with matplotlib (a core dependency): DejaVu only; STIX and Computer Modern are held out
FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Italic.ttf",
    "DejaVuSansMono.ttf",
)  # fmt: skip
# no O o Q D (0), I l i j | ! / (1), Z z (2), S s (5), b G (6), B (8), g q (9), T (7) and no digits
LETTERS = "ACEFHJKLMNPRUVWXYacdefhkmnprtuvwxy"
# nor the symbols that look like one: θ Θ φ Φ σ δ ∂ (0, 6, 8), ε ζ ξ β § (3, 5, 8)
SYMBOLS = "#$%&*+<=>?@^{}~αγηλμπψωΓΔΛΞΠΣΨΩ∞∫√≈≠±÷×∑∇∈∉∩∪⊂⊃∧∨¬∀∃€£¥¶©®♠♣♦♪"
FONT_PX = 64  # glyphs are drawn this big, then reduced to the 20 px box (anti-aliased, like MNIST)
CANVAS = 40  # side of the canvas that strokes are drawn on before being fitted into the 28x28 field
SPLATS_PER_SEGMENT = 32  # points drawn along each segment: under a pixel apart on the canvas
INK_THRESHOLD = 0.2  # pixels brighter than this count as ink for the bounding box
MIN_ASPECT = 0.4  # strokes and shapes are at least this wide for their height (or the other way round)


def font_dir() -> Path:
    """matplotlib's bundled TrueType fonts, found without importing matplotlib."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("matplotlib is not installed; it ships the fonts that letters are drawn with")
    return Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"


def render_glyph(char: str, font: ImageFont.FreeTypeFont) -> np.ndarray | None:
    """One character as a (28, 28) float32 field in [0, 1] laid out like MNIST; None if the font lacks it."""
    img = Image.new("L", (2 * FONT_PX, 2 * FONT_PX), 0)
    ImageDraw.Draw(img).text((FONT_PX // 2, FONT_PX // 4), char, fill=255, font=font)
    ink = np.asarray(img, np.float32) / 255.0
    rows, cols = np.flatnonzero(ink.max(axis=1) > INK_THRESHOLD), np.flatnonzero(ink.max(axis=0) > INK_THRESHOLD)
    if len(rows) < 2 or len(cols) < 2:
        return None
    box = fit_box(ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], BOX)
    return np.clip(centre_by_mass(box), 0.0, 1.0)


@cache
def glyphs() -> torch.Tensor:
    """(G, 1, 28, 28) every LETTERS and SYMBOLS character in every FONTS face that has it; rendered once."""
    out = []
    for name in FONTS:
        font = ImageFont.truetype(str(font_dir() / name), FONT_PX)
        for char in LETTERS + SYMBOLS:
            if font.getmask(char).getbbox() is None:  # no glyph: the font would draw an empty box or nothing
                continue
            field = render_glyph(char, font)
            if field is not None:
                out.append(field)
    return torch.from_numpy(np.stack(out))[:, None]


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=generator) * (hi - lo) + lo).to(device)


def rasterize(points: torch.Tensor, pen: torch.Tensor, width: torch.Tensor, side: int = CANVAS) -> torch.Tensor:
    """Polylines as anti-aliased strokes: points (N, P, 2) in [0, 1]^2 (x, y), pen (N, P - 1) True where a segment
    is drawn, width (N,) in pixels (1-5) -> (N, 1, side, side) in [0, 1]. Dense points along each segment are
    splatted bilinearly into a hairline, which max-pooling thickens: O(points + pixels), not their product."""
    n = points.shape[0]
    t = torch.linspace(0, 1, SPLATS_PER_SEGMENT, device=points.device).view(1, 1, -1, 1)
    a, b = points[:, :-1, None], points[:, 1:, None]  # (N, S, 1, 2) segment ends
    dense = (a + t * (b - a)).reshape(n, -1, 2) * side - 0.5  # (N, S * M, 2) in pixel-centre units
    drawn = pen[..., None].expand(-1, -1, SPLATS_PER_SEGMENT).reshape(n, -1)
    base = dense.floor()
    frac = dense - base
    hairline = torch.zeros(n, side * side, device=points.device)
    for dx in (0, 1):
        for dy in (0, 1):
            x, y = base[..., 0] + dx, base[..., 1] + dy
            weight = (frac[..., 0] if dx else 1 - frac[..., 0]) * (frac[..., 1] if dy else 1 - frac[..., 1])
            inside = drawn & (x >= 0) & (x < side) & (y >= 0) & (y < side)
            index = (y.clamp(0, side - 1) * side + x.clamp(0, side - 1)).long()
            hairline.scatter_reduce_(1, index, torch.where(inside, weight, 0.0), reduce="amax")
    ink = (hairline.view(n, 1, side, side) * 2).clamp(0, 1)  # a segment between pixel centres lights both halves
    # widen by whole pixels per max-pool, then blend for the fraction: (N,) widths in 1-5 px
    grown = [ink]
    for _ in range(2):
        grown.append(F.max_pool2d(grown[-1], 3, stride=1, padding=1))
    level = ((width - 1) / 2).clamp(0, 2).view(n, 1, 1, 1)
    thin, mid, thick = grown
    ink = torch.where(level < 1, thin + level * (mid - thin), mid + (level - 1) * (thick - mid))
    return F.avg_pool2d(ink, 3, stride=1, padding=1, count_include_pad=False).mul(1.5).clamp(0, 1)  # soft edges


def scribbles(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Random-walk pen strokes that turn smoothly: doodles, loops and zigzags of 1-3 strokes, (N, 1, 40, 40)."""
    steps, strokes = 36, int(torch.randint(1, 4, (1,), generator=generator))
    per = steps // strokes
    turn = torch.randn(n, steps, generator=generator) * torch.rand(n, 1, generator=generator) * 1.2
    heading = torch.rand(n, 1, generator=generator) * 2 * math.pi + torch.cumsum(turn, 1)
    step = torch.cat([torch.cos(heading)[..., None], torch.sin(heading)[..., None]], -1) * 0.08
    pos = torch.cumsum(step, 1) + torch.rand(n, 1, 2, generator=generator)
    # a new stroke starts elsewhere: jump the pen, and draw no segment into the jump
    jumps = torch.zeros(n, steps, 2)
    for k in range(1, strokes):
        jumps[:, k * per :] += (torch.rand(n, 1, 2, generator=generator) - 0.5) * 0.8
    pen = torch.ones(n, steps - 1, dtype=torch.bool)
    for k in range(1, strokes):
        pen[:, k * per - 1] = False
    return _draw(pos + jumps, pen, generator, device)


def shapes(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Polygons (3-6 corners, some with a diagonal), grids and hatching, (N, 1, 40, 40)."""
    kind = torch.randint(0, 3, (n,), generator=generator)
    points, pen = torch.zeros(n, 16, 2), torch.zeros(n, 15, dtype=torch.bool)
    for i in range(n):
        k = int(kind[i])
        if k == 0:  # polygon, closed, corners jittered
            corners = int(torch.randint(3, 7, (1,), generator=generator))
            angle = torch.arange(corners + 1) * 2 * math.pi / corners + float(torch.rand(1, generator=generator)) * 6
            radius = 1 + 0.25 * torch.randn(corners + 1, generator=generator)
            radius[-1] = radius[0]
            poly = torch.stack([torch.cos(angle) * radius, torch.sin(angle) * radius], -1)
            if torch.rand(1, generator=generator) < 0.4:  # a diagonal across it
                poly = torch.cat([poly, poly[corners // 2 : corners // 2 + 1]])
            points[i, : len(poly)] = poly
            points[i, len(poly) :] = poly[-1]
            pen[i, : len(poly) - 1] = True
        else:  # grid (both directions) or hatching (one), lines slightly askew
            lines = int(torch.randint(3, 5, (1,), generator=generator))
            ends = []
            for direction in (0, 1) if k == 1 else (int(torch.randint(0, 2, (1,), generator=generator)),):
                for j in range(lines):
                    at = j / (lines - 1) + 0.05 * float(torch.randn(1, generator=generator))
                    start, end = [at, 0.0], [at + 0.1 * float(torch.randn(1, generator=generator)), 1.0]
                    if direction:
                        start, end = start[::-1], end[::-1]
                    ends += [start, end]
            seg = torch.tensor(ends)
            points[i, : len(seg)] = seg
            points[i, len(seg) :] = seg[-1]
            pen[i, 0 : len(seg) - 1 : 2] = True  # every other segment joins two lines: pen up
    return _draw(points, pen, generator, device)


def _draw(points: torch.Tensor, pen: torch.Tensor, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Squeeze the points into the canvas (keeping the aspect ratio, random tilt) and rasterize them."""
    n = points.shape[0]
    angle = torch.rand(n, generator=generator) * 2 * math.pi
    rot = torch.stack([torch.cos(angle), -torch.sin(angle), torch.sin(angle), torch.cos(angle)], -1).view(n, 2, 2)
    aspect = torch.exp(torch.randn(n, 1, 2, generator=generator) * 0.25)
    points = (points @ rot) * aspect
    lo, hi = points.amin(1, keepdim=True), points.amax(1, keepdim=True)
    extent = (hi - lo).clamp_min(1e-3)
    # a thin sliver would be scaled up into a stroke like a 1: stretch the short side to MIN_ASPECT of the long
    longest = extent.amax(-1, keepdim=True)
    points = (points - (lo + hi) / 2) * (torch.maximum(extent, MIN_ASPECT * longest) / extent) / longest * 0.75 + 0.5
    width = torch.rand(n, generator=generator) * 2.5 + 1.5  # canvas pixels; fitted to the field, about 1-3 px
    return rasterize(points.to(device), pen.to(device), width.to(device))


def overlaps(digits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pairs of digits (N, 1, 28, 28) in [0, 1] drawn over each other, a few pixels apart: (N, 1, 40, 40)."""
    n = digits.shape[0]
    pad = (CANVAS - IMAGE_SIZE) // 2
    first = F.pad(digits, (pad,) * 4)
    partner = F.pad(digits[torch.randperm(n, generator=generator).to(digits.device)], (pad,) * 4)
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * 0.25  # up to 10 px of the 40 px canvas
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(digits), list(first.shape), align_corners=False)
    return torch.maximum(first, F.grid_sample(partner, grid, align_corners=False))


def fit_field(canvas: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) ink in [0, 1] -> (N, 1, 28, 28) as preprocess lays a picture out: the ink's bounding box
    scaled to a 20 px longer side, its centre of mass at MNIST's centre."""
    n, _, h, w = canvas.shape
    ink = canvas[:, 0] > INK_THRESHOLD
    ys, xs = torch.arange(h, device=canvas.device), torch.arange(w, device=canvas.device)

    def span(mask: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lo = torch.where(mask, idx, idx.numel()).amin(1)
        hi = torch.where(mask, idx, -1).amax(1)
        return lo.float(), (hi - lo + 1).clamp_min(1).float()

    top, height = span(ink.any(2), ys)
    left, width = span(ink.any(1), xs)
    scale = BOX / torch.maximum(height, width)  # field pixels per canvas pixel
    mass = canvas[:, 0].sum((1, 2)).clamp_min(1e-6)
    cy = (canvas[:, 0].sum(2) * ys).sum(1) / mass
    cx = (canvas[:, 0].sum(1) * xs).sum(1) / mass
    # field pixel u shows canvas pixel c + (u - COM_CENTRE) / scale; in affine_grid's [-1, 1] units (centres of
    # pixel i at (2i + 1) / size - 1) that is an affine map of the output coordinate
    theta = torch.zeros(n, 2, 3, device=canvas.device)
    theta[:, 0, 0] = IMAGE_SIZE / (scale * w)
    theta[:, 1, 1] = IMAGE_SIZE / (scale * h)
    offset = (IMAGE_SIZE / 2 - 0.5 - COM_CENTRE) / scale  # canvas pixels between the field's middle and its COM
    theta[:, 0, 2] = (2 * (cx + offset) + 1) / w - 1
    theta[:, 1, 2] = (2 * (cy + offset) + 1) / h - 1
    # downscaling by up to 2x: a light blur first stands in for the area averaging preprocess does
    soft = F.avg_pool2d(canvas, 3, stride=1, padding=1, count_include_pad=False) if h > IMAGE_SIZE else canvas
    blend = (1 - torch.clamp(scale, max=1)).view(n, 1, 1, 1)
    source = canvas * (1 - blend) + soft * blend
    grid = F.affine_grid(theta, [n, 1, IMAGE_SIZE, IMAGE_SIZE], align_corners=False)
    field = F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (field / field.amax((2, 3), keepdim=True).clamp_min(1e-6)).clamp(0, 1)


def distort(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Elastic wobble (a smooth random displacement field) and thicker or thinner strokes, per image."""
    n = x.shape[0]
    strength = _uniform(n, 0.0, 0.12, generator, x.device).view(n, 1, 1, 1)  # displacement, in image halves
    field = torch.randn(n, 2, 4, 4, generator=generator).to(x) * strength
    field = F.interpolate(field, size=x.shape[-2:], mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
    eye = torch.eye(2, 3, device=x.device).expand(n, 2, 3)
    grid = F.affine_grid(eye, list(x.shape), align_corners=False) + field
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    amount = _uniform(n, -0.5, 0.6, generator, x.device).view(n, 1, 1, 1)
    thick = F.max_pool2d(x, 3, stride=1, padding=1)
    thin = -F.max_pool2d(-x, 3, stride=1, padding=1)
    return torch.where(amount > 0, x + amount * (thick - x), x + amount * (x - thin))


def make(count: int, generator: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
    """`count` negatives (count, 1, 28, 28) in [0, 1]: a third each letters and symbols, scribbles, and shapes."""
    device = torch.device(device)
    parts = [count // 3, count // 3, count - 2 * (count // 3)]
    letters = glyphs().to(device)
    picked = letters[torch.randint(len(letters), (parts[0],), generator=generator).to(device)]
    canvases = [
        F.pad(picked, ((CANVAS - IMAGE_SIZE) // 2,) * 4),
        scribbles(parts[1], generator, device),
        shapes(parts[2], generator, device),
    ]
    out = torch.cat([fit_field(distort(c, generator)) for c in canvases])
    return out[torch.randperm(count, generator=generator).to(device)]


def main() -> None:
    """Write a sheet of 256 negatives to the path given, for looking at."""
    import sys

    from mnist_lit.report import digit_grid

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/negatives.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    made = make(256, torch.Generator().manual_seed(0))
    digit_grid(made[:, 0], [""] * len(made)).save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
