"""Pictures that are not digits, made on the fly, for teaching the network to answer "not a digit":
letters and symbols rendered from the fonts matplotlib ships, the Hershey stroke fonts' glyphs
(mnist_lit.data.synthetic.hershey), pictograms (mnist_lit.data.synthetic.pictograms), scribbles,
polygons, grids and hatching, and overlapping digits.

Try it: python -m mnist_lit.data.synthetic.negatives outputs/negatives.png

They must differ from digits in shape only. A network rewards any cheaper difference: negatives with
softer edges than MNIST's taught an earlier version to reject blurry pictures and to accept every
crisp letter. So everything is made the way MNIST itself was: drawn in binary ink on a canvas
SUPERSAMPLE times the field's resolution, bent there, then reduced by area averaging into a 20 px
box centred by mass in 28x28, which is also what mnist_lit.reading.preprocess makes of a user's
picture (mnist_lit.data.synthetic.ink holds those steps). Digits used for overlaps (and, in
mnist_lit.training.negative_mixer, the digits that train beside the negatives) go through the same
steps. Letters that people write like digits (O and 0, l and 1, S and 5, ...) are left out: they
would teach the network to reject real digits. The families that bench/not_digits.py scores are
partly held out from these.
"""

from __future__ import annotations

import importlib.util
import math
from functools import cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from mnist_lit.data.synthetic import hershey, pictograms
from mnist_lit.data.synthetic.ink import CHUNK, FILL, HI, distort, draw, fit_field, uniform

# fonts bundled with matplotlib (a core dependency): DejaVu only; STIX and Computer Modern are held
# out
FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSansMono.ttf",
)
# no O o Q D (0), I l i j | ! / (1), Z z (2), S s (5), b G (6), B (8), g q (9), T (7) and no digits
LETTERS = "ACEFHJKLMNPRUVWXYacdefhkmnprtuvwxy"
# nor the symbols that look like one: θ Θ φ Φ σ δ ∂ (0, 6, 8), ε ζ ξ β § (3, 5, 8)
SYMBOLS = "#$%&*+<=>?@^{}~αγηλμπψωΓΔΛΞΠΣΨΩ∞∫√≈≠±÷×∑∇∈∉∩∪⊂⊃∧∨¬∀∃€£¥¶©®♠♣♦♪"
# glyphs are drawn this big, then scaled to FILL * HI and thresholded
FONT_PX = 96
# shares of a bank: glyphs are DejaVu letters and symbols filled in; strokes, the Hershey fonts
# drawn with a pen
FAMILIES = {
    "glyphs": 0.15,
    "strokes": 0.25,
    "pictograms": 0.2,
    "scribbles": 0.1,
    "shapes": 0.1,
    "compositions": 0.12,
    "dust": 0.08,
}
# the faintest dust, as a share of full ink
FAINT_DUST = 0.25


def font_dir() -> Path:
    """matplotlib's bundled TrueType fonts, found without importing matplotlib."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "matplotlib is not installed; it ships the fonts that letters are drawn with"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"


def render_glyph(char: str, font: ImageFont.FreeTypeFont) -> np.ndarray | None:
    """One character as binary ink (HI, HI) bool, its longer side FILL * HI, centred; None if the
    font lacks it."""
    # no glyph: the font would draw an empty box or nothing
    if font.getmask(char).getbbox() is None:
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
    """(G, 1, HI, HI) bool: every LETTERS and SYMBOLS character in every FONTS face that has it;
    rendered once."""
    out = []
    for name in FONTS:
        font = ImageFont.truetype(str(font_dir() / name), FONT_PX)
        for char in LETTERS + SYMBOLS:
            ink = render_glyph(char, font)
            if ink is not None:
                out.append(ink)
    return torch.from_numpy(np.stack(out))[:, None]


def scribbles(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Random-walk pen strokes that turn smoothly: doodles, loops and zigzags of 1-3 strokes, (N, 1,
    HI, HI) binary."""
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
    return draw(pos + jumps, pen, generator, device)


def shapes(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Polygons (3-6 corners, some with a diagonal), grids and hatching, (N, 1, HI, HI) binary."""
    kind = torch.randint(0, 3, (n,), generator=generator)
    points, pen = torch.zeros(n, 16, 2), torch.zeros(n, 15, dtype=torch.bool)
    for i in range(n):
        k = int(kind[i])
        # polygon, closed, corners jittered
        if k == 0:
            corners = int(torch.randint(3, 7, (1,), generator=generator))
            angle = (
                torch.arange(corners + 1) * 2 * math.pi / corners
                + float(torch.rand(1, generator=generator)) * 6
            )
            radius = 1 + 0.25 * torch.randn(corners + 1, generator=generator)
            radius[-1] = radius[0]
            poly = torch.stack([torch.cos(angle) * radius, torch.sin(angle) * radius], -1)
            # a diagonal across it
            if torch.rand(1, generator=generator) < 0.4:
                poly = torch.cat([poly, poly[corners // 2 : corners // 2 + 1]])
            points[i, : len(poly)] = poly
            points[i, len(poly) :] = poly[-1]
            pen[i, : len(poly) - 1] = True
        else:
            # grid (both directions) or hatching (one), lines slightly askew
            lines = int(torch.randint(3, 5, (1,), generator=generator))
            ends = []
            for direction in (
                (0, 1) if k == 1 else (int(torch.randint(0, 2, (1,), generator=generator)),)
            ):
                for j in range(lines):
                    at = j / (lines - 1) + 0.05 * float(torch.randn(1, generator=generator))
                    start, end = (
                        [at, 0.0],
                        [at + 0.1 * float(torch.randn(1, generator=generator)), 1.0],
                    )
                    if direction:
                        start, end = start[::-1], end[::-1]
                    ends += [start, end]
            seg = torch.tensor(ends)
            points[i, : len(seg)] = seg
            points[i, len(seg) :] = seg[-1]
            # every other segment joins two lines: pen up
            pen[i, 0 : len(seg) - 1 : 2] = True
    return draw(points, pen, generator, device)


def compositions(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """The way doodles are built: an outline (an ellipse, a lumpy or polygonal ring) with 2-4 short
    marks inside it or well clear of it, like a face, a sun or a labelled box; (N, 1, HI, HI)
    binary. Never a bare ring: a 0."""
    ring, marks, per_mark = 25, 4, 4
    t = torch.linspace(0, 2 * math.pi, ring).expand(n, ring)
    lobes = torch.randint(3, 7, (n, 1), generator=generator)
    radius = 1 + torch.rand(n, 1, generator=generator) * 0.2 * torch.cos(
        lobes * t + torch.rand(n, 1, generator=generator) * 6
    )
    axes = 0.6 + 0.4 * torch.rand(n, 1, 2, generator=generator)
    # (N, ring, 2)
    outline = torch.stack([t.cos(), t.sin()], -1) * radius[..., None] * axes
    # each mark: a start inside (radius < 0.55) or outside (1.3-1.6), then a few short steps that
    # turn smoothly
    outside = torch.rand(n, marks, 1, generator=generator) < 0.3
    distance = torch.where(
        outside,
        1.3 + 0.3 * torch.rand(n, marks, 1, generator=generator),
        0.55 * torch.rand(n, marks, 1, generator=generator),
    )
    angle = torch.rand(n, marks, 1, generator=generator) * 2 * math.pi
    # (N, marks, 2)
    start = torch.cat([angle.cos(), angle.sin()], -1) * distance * axes
    heading = torch.rand(n, marks, 1, generator=generator) * 2 * math.pi + torch.cumsum(
        torch.randn(n, marks, per_mark - 1, generator=generator) * 0.5, -1
    )
    # from a dot to a short dash or arc
    length = 0.02 + 0.12 * torch.rand(n, marks, 1, generator=generator)
    # (N, marks, per_mark - 1, 2)
    steps = torch.stack([heading.cos(), heading.sin()], -1) * length[..., None]
    # (N, marks, per_mark, 2)
    strokes = torch.cat([start[:, :, None], start[:, :, None] + torch.cumsum(steps, 2)], 2)
    used = torch.arange(marks).view(1, marks, 1) < torch.randint(
        2, marks + 1, (n, 1, 1), generator=generator
    )
    # unused marks collapse onto the first
    strokes = torch.where(used[..., None], strokes, strokes[:, :1, :1])
    points = torch.cat([outline, strokes.reshape(n, -1, 2)], 1)
    drawn_mark = torch.cat(
        [torch.zeros(n, marks, 1, dtype=torch.bool), used.expand(n, marks, per_mark - 1)], 2
    )
    # pen up between
    pen = torch.cat([torch.ones(n, ring - 1, dtype=torch.bool), drawn_mark.reshape(n, -1)], 1)
    return draw(points, pen, generator, device)


def dust(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """4-24 specks scattered over the picture: dirt, or a faint texture that preprocessing stretched
    into ink; (N, 1, HI, HI) binary."""
    specks = 24
    centre = torch.rand(n, specks, 1, 2, generator=generator)
    tail = (torch.rand(n, specks, 1, 2, generator=generator) - 0.5) * 0.06
    points = torch.cat([centre, centre + tail], 2).reshape(n, -1, 2)
    used = torch.arange(specks).view(1, specks) < torch.randint(
        4, specks + 1, (n, 1), generator=generator
    )
    # each speck, then a jump
    pen = torch.stack([used, torch.zeros_like(used)], -1).reshape(n, -1)[:, :-1]
    # unused: on the first
    points = torch.where(used.repeat_interleave(2, 1)[..., None], points, centre[:, :1, 0])
    return draw(points, pen, generator, device, pen_range=(0.3, 1.0))


def canvases(
    count: int, generator: torch.Generator, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """`count` drawings (count, 1, HI, HI) of ink as uint8 (255: full ink), in random order, from
    each family its FAMILIES share."""
    device = torch.device(device)
    sizes = [round(count * share) for share in FAMILIES.values()]
    sizes[0] += count - sum(sizes)
    letters = glyphs()
    picked = letters[torch.randint(len(letters), (sizes[0],), generator=generator)].to(device)
    # type has one pen and no tremor: each glyph is turned, bent and re-inked like a letter written
    # by hand
    drawn = [torch.cat([distort(part.float(), generator) for part in picked.split(CHUNK)])]
    drawn.append(hershey.generate_glyphs(sizes[1], False, generator, device)[0])
    for family, size in zip(
        (pictograms.generate_pictograms, scribbles, shapes, compositions, dust), sizes[2:]
    ):
        drawn.append(family(size, generator, device))
    # dust is often faint: the grain of a photo of blank paper, which preprocessing stretched into
    # specks
    drawn[-1] *= uniform(sizes[-1], FAINT_DUST, 1.0, generator, device).view(-1, 1, 1, 1)
    out = torch.cat([(d * 255).round().to(torch.uint8) for d in drawn])
    return out[torch.randperm(count, generator=generator).to(device)]


def generate_negatives(
    count: int, generator: torch.Generator, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """`count` negatives (count, 1, 28, 28) in [0, 1], laid out as the model sees a picture."""
    return torch.cat(
        [fit_field(part.float() / 255) for part in canvases(count, generator, device).split(CHUNK)]
    )


def main() -> None:
    """Write a sheet of 256 negatives to the path given, for looking at."""
    import sys

    from torchvision.utils import save_image

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/negatives.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    made = generate_negatives(256, torch.Generator().manual_seed(0))
    save_image(made, out, nrow=16, pad_value=0.5)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
