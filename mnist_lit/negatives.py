"""Pictures that are not digits, made on the fly, for teaching the network to answer "not a digit": letters and
symbols rendered from the fonts matplotlib ships, scribbles, polygons, grids and hatching, and overlapping digits.

Try it: python -m mnist_lit.negatives outputs/negatives.png

They must differ from digits in shape only. A network rewards any cheaper difference: negatives with softer
edges than MNIST's taught an earlier version to reject blurry pictures and to accept every crisp letter. So
everything is made the way MNIST itself was: drawn in binary ink on a canvas SUPERSAMPLE times the field's
resolution, bent there, then reduced by area averaging into a 20 px box centred by mass in 28x28, which is also
what mnist_lit.preprocess makes of a user's picture. Digits used for overlaps (and, in mnist_lit.module, the
digits that train beside the negatives) go through the same steps.
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
from mnist_lit.preprocess import BOX, COM_CENTRE

# fonts bundled with matplotlib (a core dependency): DejaVu only; STIX and Computer Modern are held out
FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Italic.ttf",
    "DejaVuSansMono.ttf",
)  # fmt: skip
# no O o Q D (0), I l i j | ! / (1), Z z (2), S s (5), b G (6), B (8), g q (9), T (7) and no digits
LETTERS = "ACEFHJKLMNPRUVWXYacdefhkmnprtuvwxy"
# nor the symbols that look like one: θ Θ φ Φ σ δ ∂ (0, 6, 8), ε ζ ξ β § (3, 5, 8)
SYMBOLS = "#$%&*+<=>?@^{}~αγηλμπψωΓΔΛΞΠΣΨΩ∞∫√≈≠±÷×∑∇∈∉∩∪⊂⊃∧∨¬∀∃€£¥¶©®♠♣♦♪"
SUPERSAMPLE = 3  # canvas pixels per field pixel: binary ink averaged over 3x3 gives MNIST-like grey edges
HI = IMAGE_SIZE * SUPERSAMPLE  # the drawing canvas's side (84)
FILL = 0.7  # share of the canvas side that a drawing spans, leaving room to rotate and bend it
FONT_PX = 96  # glyphs are drawn this big, then scaled to FILL * HI and thresholded
SPLATS_PER_SEGMENT = 64  # points drawn along each segment: close enough that the widened line has no gaps
MNIST_PEN = 2.35 * SUPERSAMPLE  # MNIST's mean stroke width (preprocess.MNIST_STROKE) in canvas pixels
PEN_RANGE = (0.4, 1.25)  # strokes are drawn this many times MNIST_PEN wide
WARP_DEGREES = 25.0  # rotation of each drawing before it is laid out
ELASTIC = 0.1  # largest elastic displacement, in canvas halves
CHUNK = 512  # drawings made per tensor op; bounds memory at (CHUNK, 1, HI, HI)
FAMILIES = {"glyphs": 0.3, "scribbles": 0.2, "shapes": 0.2, "compositions": 0.2, "dust": 0.1}  # shares of a bank
FAINT_DUST = 0.25  # the faintest dust, as a share of full ink
MIN_ASPECT = 0.4  # strokes and shapes are at least this wide for their height (or the other way round)


def font_dir() -> Path:
    """matplotlib's bundled TrueType fonts, found without importing matplotlib."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("matplotlib is not installed; it ships the fonts that letters are drawn with")
    return Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"


def render_glyph(char: str, font: ImageFont.FreeTypeFont) -> np.ndarray | None:
    """One character as binary ink (HI, HI) bool, its longer side FILL * HI, centred; None if the font lacks it."""
    if font.getmask(char).getbbox() is None:  # no glyph: the font would draw an empty box or nothing
        return None
    img = Image.new("L", (2 * FONT_PX, 2 * FONT_PX), 0)
    ImageDraw.Draw(img).text((FONT_PX // 2, FONT_PX // 4), char, fill=255, font=font)
    box = img.getbbox()
    if box is None or min(box[2] - box[0], box[3] - box[1]) < 2:
        return None
    crop = img.crop(box)
    scale = FILL * HI / max(crop.size)
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    ink = np.asarray(crop.resize(size, Image.Resampling.BILINEAR)) >= 128
    out = np.zeros((HI, HI), bool)
    top, left = (HI - size[1]) // 2, (HI - size[0]) // 2
    out[top : top + size[1], left : left + size[0]] = ink
    return out


@cache
def glyphs() -> torch.Tensor:
    """(G, 1, HI, HI) bool: every LETTERS and SYMBOLS character in every FONTS face that has it; rendered once."""
    out = []
    for name in FONTS:
        font = ImageFont.truetype(str(font_dir() / name), FONT_PX)
        for char in LETTERS + SYMBOLS:
            ink = render_glyph(char, font)
            if ink is not None:
                out.append(ink)
    return torch.from_numpy(np.stack(out))[:, None]


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=generator) * (hi - lo) + lo).to(device)


def widen(ink: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Grow (N, 1, H, W) binary ink by steps (N,) pixels on every side (negative: shrink), alternating square and
    cross neighbourhoods so that a dot grows into an octagon rather than a square."""
    if not len(steps):
        return ink
    # sorted by how far each grows, step s works on the prefix that still needs it, not on all N
    order = torch.argsort(steps.abs(), descending=True)
    ink, size = ink[order], steps.abs()[order]
    sign = torch.where(steps[order] > 0, 1.0, -1.0).to(ink).view(-1, 1, 1, 1)  # shrinking ink = growing the paper
    needing = (size.view(-1, 1) >= torch.arange(1, int(size[0]) + 1, device=size.device)).sum(0).tolist()
    for step, m in enumerate(needing, start=1):
        ink[:m] = sign[:m] * _grow(sign[:m] * ink[:m], square=step % 2 == 1)
    out = torch.empty_like(ink)
    out[order] = ink
    return out


def _grow(ink: torch.Tensor, square: bool) -> torch.Tensor:
    """Max over each pixel's 3x3 (square) or 4-neighbour (cross) neighbourhood, as shifted maxima: several times
    cheaper than max_pool2d on CPU."""
    p = F.pad(ink, (1, 1, 1, 1))
    across = torch.maximum(torch.maximum(p[..., :, :-2], p[..., :, 2:]), p[..., :, 1:-1])  # (N, 1, H + 2, W)
    if square:
        return torch.maximum(torch.maximum(across[..., :-2, :], across[..., 2:, :]), across[..., 1:-1, :])
    return torch.maximum(torch.maximum(p[..., :-2, 1:-1], p[..., 2:, 1:-1]), across[..., 1:-1, :])


def rasterize(points: torch.Tensor, pen: torch.Tensor, width: torch.Tensor, side: int = HI) -> torch.Tensor:
    """Polylines as binary strokes: points (N, P, 2) in [0, 1]^2 (x, y), pen (N, P - 1) True where a segment is
    drawn, width (N,) in pixels -> (N, 1, side, side) in {0, 1}. Dense points along each segment mark a hairline,
    which `widen` thickens: O(points + pixels), not their product."""
    n = points.shape[0]
    t = torch.linspace(0, 1, SPLATS_PER_SEGMENT, device=points.device).view(1, 1, -1, 1)
    a, b = points[:, :-1, None], points[:, 1:, None]  # (N, S, 1, 2) segment ends
    dense = ((a + t * (b - a)).reshape(n, -1, 2) * side).floor().long()  # (N, S * M, 2) pixel indices
    drawn = pen[..., None].expand(-1, -1, SPLATS_PER_SEGMENT).reshape(n, -1)
    x, y = dense[..., 0], dense[..., 1]
    inside = drawn & (x >= 0) & (x < side) & (y >= 0) & (y < side)
    hairline = torch.zeros(n, side * side, device=points.device)
    index = y.clamp(0, side - 1) * side + x.clamp(0, side - 1)
    hairline.scatter_reduce_(1, index, inside.float(), reduce="amax")
    return widen(hairline.view(n, 1, side, side), ((width - 1) / 2).round().long())


def scribbles(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Random-walk pen strokes that turn smoothly: doodles, loops and zigzags of 1-3 strokes, (N, 1, HI, HI) binary."""
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
    """Polygons (3-6 corners, some with a diagonal), grids and hatching, (N, 1, HI, HI) binary."""
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


def compositions(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """The way doodles are built: an outline (an ellipse, a lumpy or polygonal ring) with 2-4 short marks inside it
    or well clear of it, like a face, a sun or a labelled box; (N, 1, HI, HI) binary. Never a bare ring: a 0."""
    ring, marks, per_mark = 25, 4, 4
    t = torch.linspace(0, 2 * math.pi, ring).expand(n, ring)
    lobes = torch.randint(3, 7, (n, 1), generator=generator)
    radius = 1 + torch.rand(n, 1, generator=generator) * 0.2 * torch.cos(
        lobes * t + torch.rand(n, 1, generator=generator) * 6
    )
    axes = 0.6 + 0.4 * torch.rand(n, 1, 2, generator=generator)
    outline = torch.stack([t.cos(), t.sin()], -1) * radius[..., None] * axes  # (N, ring, 2)
    # each mark: a start inside (radius < 0.55) or outside (1.3-1.6), then a few short steps that turn smoothly
    outside = torch.rand(n, marks, 1, generator=generator) < 0.3
    distance = torch.where(outside, 1.3 + 0.3 * torch.rand(n, marks, 1, generator=generator),
                           0.55 * torch.rand(n, marks, 1, generator=generator))  # fmt: skip
    angle = torch.rand(n, marks, 1, generator=generator) * 2 * math.pi
    start = torch.cat([angle.cos(), angle.sin()], -1) * distance * axes  # (N, marks, 2)
    heading = torch.rand(n, marks, 1, generator=generator) * 2 * math.pi + torch.cumsum(
        torch.randn(n, marks, per_mark - 1, generator=generator) * 0.5, -1
    )
    length = 0.02 + 0.12 * torch.rand(n, marks, 1, generator=generator)  # from a dot to a short dash or arc
    steps = torch.stack([heading.cos(), heading.sin()], -1) * length[..., None]  # (N, marks, per_mark - 1, 2)
    strokes = torch.cat([start[:, :, None], start[:, :, None] + torch.cumsum(steps, 2)], 2)  # (N, marks, per_mark, 2)
    used = torch.arange(marks).view(1, marks, 1) < torch.randint(2, marks + 1, (n, 1, 1), generator=generator)
    strokes = torch.where(used[..., None], strokes, strokes[:, :1, :1])  # unused marks collapse onto the first
    points = torch.cat([outline, strokes.reshape(n, -1, 2)], 1)
    drawn_mark = torch.cat([torch.zeros(n, marks, 1, dtype=torch.bool), used.expand(n, marks, per_mark - 1)], 2)
    pen = torch.cat([torch.ones(n, ring - 1, dtype=torch.bool), drawn_mark.reshape(n, -1)], 1)  # pen up between
    return _draw(points, pen, generator, device)


def dust(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """4-24 specks scattered over the picture: dirt, or a faint texture that preprocessing stretched into ink;
    (N, 1, HI, HI) binary."""
    specks = 24
    centre = torch.rand(n, specks, 1, 2, generator=generator)
    tail = (torch.rand(n, specks, 1, 2, generator=generator) - 0.5) * 0.06
    points = torch.cat([centre, centre + tail], 2).reshape(n, -1, 2)
    used = torch.arange(specks).view(1, specks) < torch.randint(4, specks + 1, (n, 1), generator=generator)
    pen = torch.stack([used, torch.zeros_like(used)], -1).reshape(n, -1)[:, :-1]  # each speck, then a jump
    points = torch.where(used.repeat_interleave(2, 1)[..., None], points, centre[:, :1, 0])  # unused: on the first
    return _draw(points, pen, generator, device, pen_range=(0.3, 1.0))


def _draw(
    points: torch.Tensor, pen: torch.Tensor, generator: torch.Generator, device: torch.device,
    pen_range: tuple[float, float] = PEN_RANGE,
) -> torch.Tensor:  # fmt: skip
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
    points = (points - (lo + hi) / 2) * (torch.maximum(extent, MIN_ASPECT * longest) / extent) / longest * FILL + 0.5
    width = MNIST_PEN * _uniform(n, *pen_range, generator, device)
    return torch.cat(
        [rasterize(*part) for part in zip(*(v.split(CHUNK) for v in (points.to(device), pen.to(device), width)))]
    )


def lift(digits: torch.Tensor) -> torch.Tensor:
    """(N, 1, 28, 28) digits in [0, 1] -> binary ink (N, 1, HI, HI): the pen strokes that MNIST averaged down."""
    return (F.interpolate(digits, size=(HI, HI), mode="bilinear", align_corners=False) >= 0.5).to(digits.dtype)


def affine_grid(theta: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """F.affine_grid(theta, (N, C, H, W), align_corners=False) for theta (N, 2, 3): the sampling grid (N, H, W, 2).
    Built by broadcasting, because affine_grid's batched matmul costs several times the grid_sample that uses it."""
    h, w = size
    # pixel i's centre in [-1, 1] units
    xs = ((2 * torch.arange(w, device=theta.device, dtype=theta.dtype) + 1) / w - 1).view(1, 1, w, 1)
    ys = ((2 * torch.arange(h, device=theta.device, dtype=theta.dtype) + 1) / h - 1).view(1, h, 1, 1)
    rows = theta.transpose(1, 2).unsqueeze(1)  # (N, 1, 3, 2): the x, y and 1 columns of theta, as rows
    return (xs * rows[:, :, 0:1] + rows[:, :, 2:3]) + ys * rows[:, :, 1:2]  # one full-size add, (N, H, W, 2)


def overlaps(ink: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pairs of digits (N, 1, HI, HI) of binary ink drawn over each other, a few pixels apart; the partner is shrunk
    a little and may stick out of the canvas, so that some pairs hold only a piece of it."""
    n = ink.shape[0]
    partner = ink[torch.randperm(n, generator=generator).to(ink.device)]
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 + torch.rand(n, generator=generator) * 0.4  # >1: the partner is smaller
    theta[:, :, 2] = (torch.rand(n, 2, generator=generator) * 2 - 1) * 0.6  # up to 30% of the canvas either way
    grid = affine_grid(theta.to(ink), ink.shape[-2:])
    return torch.maximum(ink, F.grid_sample(partner, grid, mode="nearest", align_corners=False))


def distort(ink: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bend each drawing of binary ink (N, 1, HI, HI): a rotation, an elastic wobble (a smooth random displacement
    field), and thicker or thinner strokes; the result is binary ink again."""
    n, device = ink.shape[0], ink.device
    angle = torch.deg2rad(_uniform(n, -WARP_DEGREES, WARP_DEGREES, generator, device))
    theta = torch.stack(
        [torch.stack([angle.cos(), -angle.sin(), 0 * angle], 1), torch.stack([angle.sin(), angle.cos(), 0 * angle], 1)],
        1,
    )
    strength = _uniform(n, 0.0, ELASTIC, generator, device).view(n, 1, 1, 1)
    field = torch.randn(n, 2, 4, 4, generator=generator).to(ink) * strength
    field = F.interpolate(field, size=ink.shape[-2:], mode="bilinear", align_corners=False).permute(0, 2, 3, 1)
    grid = affine_grid(theta.to(ink), ink.shape[-2:]) + field
    bent = (F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=False) >= 0.5).to(ink)
    # up to two canvas pixels more or less on each side: strokes up to 4/3 of a field pixel thinner or thicker
    return widen(bent, torch.randint(-2, 3, (n,), generator=generator).to(device))


def fit_field(ink: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) ink, 0 where there is none -> (N, 1, 28, 28) on the same scale, laid out as preprocess lays
    out a picture: the ink's bounding box scaled to a 20 px longer side, its centre of mass at MNIST's centre,
    each field pixel the average of the ink under it (sampled SUPERSAMPLE x SUPERSAMPLE times)."""
    n, _, h, w = ink.shape
    rows, cols = ink[:, 0].sum(2), ink[:, 0].sum(1)  # (N, H), (N, W); ink is never negative: > 0 means "has ink"
    ys, xs = torch.arange(h, device=ink.device), torch.arange(w, device=ink.device)

    def span(along: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        lo = torch.where(along, idx, idx.numel()).amin(1)
        hi = torch.where(along, idx, -1).amax(1)
        return (hi - lo + 1).clamp_min(1).float()

    scale = BOX / torch.maximum(span(rows > 0, ys), span(cols > 0, xs))  # field pixels per canvas pixel
    mass = rows.sum(1).clamp_min(1e-6)
    cy, cx = (rows * ys).sum(1) / mass, (cols * xs).sum(1) / mass
    theta = torch.zeros(n, 2, 3, device=ink.device)
    theta[:, 0, 0] = IMAGE_SIZE / (scale * w)
    theta[:, 1, 1] = IMAGE_SIZE / (scale * h)
    offset = (IMAGE_SIZE / 2 - 0.5 - COM_CENTRE) / scale  # canvas pixels between the field's middle and its COM
    theta[:, 0, 2] = (2 * (cx + offset) + 1) / w - 1
    theta[:, 1, 2] = (2 * (cy + offset) + 1) / h - 1
    size = IMAGE_SIZE * SUPERSAMPLE
    grid = affine_grid(theta.to(ink), (size, size))
    fine = F.grid_sample(ink, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return F.avg_pool2d(fine, SUPERSAMPLE)


def canvases(count: int, generator: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
    """`count` drawings (count, 1, HI, HI) of ink as uint8 (255: full ink), in random order, from each family its
    FAMILIES share: letters and symbols, scribbles, shapes, compositions and dust."""
    device = torch.device(device)
    sizes = [round(count * share) for share in FAMILIES.values()]
    sizes[0] += count - sum(sizes)
    letters = glyphs()
    picked = letters[torch.randint(len(letters), (sizes[0],), generator=generator)].to(device)
    # type has one pen and no tremor: each glyph is turned, bent and re-inked like a letter written by hand
    drawn = [torch.cat([distort(part.float(), generator) for part in picked.split(CHUNK)])]
    for family, size in zip((scribbles, shapes, compositions, dust), sizes[1:]):
        drawn.append(family(size, generator, device))
    # dust is often faint: the grain of a photo of blank paper, which preprocessing stretched into specks
    drawn[-1] *= _uniform(sizes[-1], FAINT_DUST, 1.0, generator, device).view(-1, 1, 1, 1)
    out = torch.cat([(d * 255).round().to(torch.uint8) for d in drawn])
    return out[torch.randperm(count, generator=generator).to(device)]


def make(count: int, generator: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
    """`count` negatives (count, 1, 28, 28) in [0, 1], laid out as the model sees a picture."""
    return torch.cat([fit_field(part.float() / 255) for part in canvases(count, generator, device).split(CHUNK)])


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
