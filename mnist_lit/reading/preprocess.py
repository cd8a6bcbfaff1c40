"""Turn any picture of a digit into what the model was trained on, the way MNIST itself was made.

Try it: pytest tests/reading/test_preprocess.py

MNIST's recipe: white ink on black, the digit's bounding box scaled (keeping its aspect ratio) so
that its longer side is 20 px, anti-aliased, then placed in a 28x28 field with its centre of mass at
the centre. User pictures are dark-on-light, coloured, transparent, off-centre, tiny on big
canvases, unevenly lit or JPEG-compressed, or phone photos of ruled paper in a shadow; each step
below undoes one of those. The page itself is read on OpenCV: its light by mnist_lit.reading.page,
its printed lines by mnist_lit.reading.lines. The rest is numpy + Pillow: no torch, so predict.py
starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import ExifTags, Image, ImageFilter, ImageOps

from mnist_lit import IMAGE_SIZE
from mnist_lit.reading import lines, page, surface

# of the recipe below; exported models record it, so that a changed recipe is noticed
VERSION = "mnist-lit-1"
# the digit's longer side inside the field
BOX = 20
# where MNIST puts the centre of mass (measured on the training set: 14.00, 14.01)
COM_CENTRE = 14.0
# longer side at which the digit is first found; big pictures are reduced to this first
LOCATE_SIZE = 320
# longer side at which the digit's region, cut from the full picture, is examined: 2-4x the box
WORK_SIZE = 80
# a digit at least this big on the small copy is seen well enough there
DETAIL_SIZE = 2 * BOX
# the largest side a picture is examined at when its digit is too small to see reduced
MAX_DETAIL = 1024
# alpha is the ink when more than this share of the picture is transparent
TRANSPARENT_MAJORITY = 0.5
# the stroke intensity is read at the 8th brightest ink pixel: robust to a hot pixel or two
PEAK_RANK = 8
# ink further from the digit than this share of its size is something else
DIGIT_REACH = 0.5
# share of ink mass trimmed on each side when boxing the digit: drops stray specks
MASS_TRIM = 0.003
UINT16_MAX = 65535
# mean stroke width of MNIST digits in 28x28 pixels (2 * area / perimeter)
MNIST_STROKE = 2.35
# px: strokes thinner than their width by less than this are left as they are
MIN_GROW = 3
# thinner strokes, as a share of the digit's longer side, are widened
STROKE_SHARE = 0.8 * MNIST_STROKE / BOX


class Box(NamedTuple):
    """A rectangle of pixels: left and top inclusive, right and bottom exclusive."""

    left: int
    top: int
    right: int
    bottom: int


def scale_box(box: Box, scale: tuple[float, float], margin: int, size: tuple[int, int]) -> Box:
    """`box` on a reduced copy, grown by `margin` copy pixels on each side, in the pixels of the
    picture of `size` (width, height) that the copy was reduced from by `scale` (x, y)."""
    sx, sy = scale
    return Box(
        max(0, round((box.left - margin) * sx)),
        max(0, round((box.top - margin) * sy)),
        min(size[0], round((box.right + margin) * sx)),
        min(size[1], round((box.bottom + margin) * sy)),
    )


class NoInkError(ValueError):
    """The picture holds nothing that stands out from its background."""


@dataclass
class Digit:
    """A picture reduced to MNIST's form: `pixels` (28, 28) uint8, white ink on black, ready to
    normalize."""

    pixels: np.ndarray


def eight_bit(img: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit integer or float grey picture as 8-bit grey (L), scaled from its format's
    full range: Pillow's own conversion clips at 255, which turns a 16-bit picture white."""
    values = np.asarray(img, dtype=np.float32)
    if img.mode.startswith("I;16"):
        top = float(UINT16_MAX)
    else:
        # I and F say nothing of their range: the smallest usual one that holds the values
        peak = float(values.max(initial=0.0))
        top = 1.0 if img.mode == "F" and peak <= 1 else 255.0 if peak <= 255 else float(UINT16_MAX)
    return Image.fromarray(np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8), "L")


def upright(img: Image.Image) -> Image.Image:
    """EXIF-rotated to how a viewer shows it, as RGB or (when it has any transparency) RGBA."""
    # most pictures are upright: no copy for those
    if img.getexif().get(ExifTags.Base.Orientation, 1) != 1:
        img = ImageOps.exif_transpose(img)
    if img.mode.startswith("I") or img.mode == "F":
        img = eight_bit(img)
    mode = (
        "RGBA"
        if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info
        else "RGB"
    )
    return img if img.mode == mode else img.convert(mode)


def as_array(img: Image.Image, longest: int = WORK_SIZE, region: Box | None = None) -> np.ndarray:
    """(H, W, 3 or 4) float32 RGB(A) in [0, 1] of the picture or of its `region` (left, top, right,
    bottom), area-averaged so that the longer side is at most `longest`."""
    region = region or Box(0, 0, img.width, img.height)
    width, height = region.right - region.left, region.bottom - region.top
    scale = longest / max(width, height)
    # reduced straight from the region: no copy of it first
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        img = img.resize(size, Image.Resampling.BOX, box=region)
    elif region != (0, 0, img.width, img.height):
        img = img.crop(region)
    return np.asarray(img, dtype=np.float32) * (1.0 / 255.0)


def opaque(rgba: np.ndarray) -> np.ndarray | None:
    """(H, W, 3) RGB of the picture as a viewer shows it, composited onto white; None when it is
    mostly transparent, so that its alpha is the ink."""
    if rgba.shape[2] == 3:
        return rgba
    if np.mean(rgba[..., 3] < 0.5) > TRANSPARENT_MAJORITY:
        return None
    alpha = rgba[..., 3:]
    return np.ascontiguousarray(rgba[..., :3] * alpha + (1.0 - alpha), dtype=np.float32)


def ink_map(
    rgba: np.ndarray, paper: page.PaperModel | None = None, page_side: float | None = None
) -> np.ndarray:
    """(H, W) float32, 0 on paper and growing with how much a pixel is ink, whatever the polarity,
    colours or lighting; paper grain, uneven light and JPEG noise are subtracted. `paper` and
    `page_side`: page.flat_ink's."""
    rgb = opaque(rgba)
    if rgb is None:
        # a transparent background: the strokes are whatever is opaque
        return rgba[..., 3].copy()
    flat = (
        page.flat_ink(np.ascontiguousarray(rgb, dtype=np.float32), paper, page_side)
        if page.available()
        else None
    )
    # the paper estimated at a scale larger than a stroke, shadows and all
    if flat is not None:
        return flat
    return surface.smooth_ink(rgb)


def clean(ink: np.ndarray) -> np.ndarray:
    """Zero the paper texture and JPEG noise below an Otsu threshold; stretch the strokes to full
    intensity."""
    flat = ink.ravel()
    peak = (
        float(np.partition(flat, -PEAK_RANK)[-PEAK_RANK])
        if flat.size > PEAK_RANK
        else float(flat.max())
    )
    if peak < surface.MIN_CONTRAST:
        raise NoInkError("no ink found: the picture is blank")
    # ink is >= 0: only the top needs a clip
    ink = np.minimum(ink * np.float32(1.0 / peak), np.float32(1.0))
    threshold = max(otsu(ink), surface.MIN_CONTRAST / peak)
    strokes = ink >= threshold
    if not strokes.any():
        raise NoInkError("no ink found: the picture is blank")
    # typical stroke intensity -> 1.0, as MNIST's strokes are saturated
    level = surface.quantile(ink[strokes], 0.5)
    out = np.minimum(ink * np.float32(1.0 / max(level, 1e-6)), np.float32(1.0))
    out[~strokes] = 0.0
    return out


def otsu(values: np.ndarray, bins: int = 64) -> float:
    """Otsu's threshold of values in [0, 1]: the cut that best separates two classes."""
    # a histogram by bincount: np.histogram costs several times more on arrays this small
    hist = np.bincount(
        np.minimum((values.ravel() * bins).astype(np.intp), bins - 1), minlength=bins
    )
    edges = np.arange(bins + 1) / bins
    p = hist / max(values.size, 1)
    omega = np.cumsum(p)
    mu = np.cumsum(p * edges[:-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * omega - mu) ** 2 / (omega * (1.0 - omega))
    return float(edges[int(np.nanargmax(between)) + 1])


def ink_bbox(ink: np.ndarray) -> Box:
    """The box of the ink mass with MASS_TRIM shaved off each side."""
    if not ink.any():
        raise NoInkError("no ink found: the picture is blank")

    def span(profile: np.ndarray) -> tuple[int, int]:
        cum = np.cumsum(profile) / profile.sum()
        lo = int(np.searchsorted(cum, MASS_TRIM, side="right"))
        hi = int(np.searchsorted(cum, 1.0 - MASS_TRIM, side="left")) + 1
        return lo, max(hi, lo + 1)

    top, bottom = span(ink.sum(axis=1))
    left, right = span(ink.sum(axis=0))
    return Box(left, top, right, bottom)


def fit_box(crop: np.ndarray, box: int = BOX) -> np.ndarray:
    """Scale (h, w) so that its longer side is `box`, keeping the aspect ratio, anti-aliased."""
    h, w = crop.shape
    scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(crop.astype(np.float32)).resize(size, method))


def stroke_width(pixels: np.ndarray) -> float:
    """Mean stroke width in pixels, 2 * area / perimeter of the strokes above half intensity."""
    strokes = pixels > 0.5
    area = int(strokes.sum())
    if area == 0:
        return 0.0
    eroded = (
        np.asarray(Image.fromarray(strokes.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(3)))
        > 0
    )
    return 2.0 * area / max(int((strokes & ~eroded).sum()), 1)


def thicken(crop: np.ndarray, width: float) -> np.ndarray:
    """One digit's ink (h, w), cropped to its box, with strokes thinner than `width` px (a pen on a
    big page) widened to it: done at the picture's own detail, a thin or grainy line becomes a solid
    stroke before it is reduced, where widening it after would only blur it."""
    grow = round(width - stroke_width(crop)) | 1
    if grow < MIN_GROW:
        return crop
    padded = np.pad(crop, grow // 2 + 1)
    if page.available():
        return page.dilate(padded, grow)
    # a square pen, not a round one
    return np.asarray(Image.fromarray(padded).filter(ImageFilter.MaxFilter(grow)))


def match_stroke(box: np.ndarray) -> np.ndarray:
    """Thicken hairlines (pen on a big canvas) towards MNIST's stroke width; leave normal strokes
    alone."""
    if stroke_width(box) >= MNIST_STROKE * 0.6:
        return box
    padded = np.pad(box, 1)
    thick = np.asarray(Image.fromarray(padded).filter(ImageFilter.MaxFilter(3)))[1:-1, 1:-1]
    # a soft halo, like MNIST's anti-aliased edges
    return np.maximum(box, 0.75 * thick)


def centre_by_mass(box: np.ndarray, field: int = IMAGE_SIZE) -> np.ndarray:
    """Place `box` in a field x field image so that its centre of mass sits at MNIST's centre."""
    h, w = box.shape
    mass = box.sum()
    ys, xs = np.arange(h), np.arange(w)
    cy, cx = (box.sum(axis=1) @ ys) / mass, (box.sum(axis=0) @ xs) / mass
    top = int(np.clip(round(COM_CENTRE - cy), 0, field - h))
    left = int(np.clip(round(COM_CENTRE - cx), 0, field - w))
    out = np.zeros((field, field), np.float32)
    out[top : top + h, left : left + w] = box
    return out


@dataclass
class Sheet:
    """A picture's ink on a reduced copy, its paper lines taken out, where they ran, and how its
    page is read (both None without OpenCV)."""

    ink: np.ndarray
    lines: np.ndarray | None
    paper: page.PaperModel | None = None


def extract_sheet(img: Image.Image, longest: int = LOCATE_SIZE) -> Sheet:
    """The whole picture's ink at up to `longest`, its paper lines found and taken out."""
    rgba = as_array(img, longest)
    rgb = opaque(rgba)
    if not page.available() or rgb is None:
        return Sheet(ink_map(rgba), None)
    paper = page.estimate_paper(np.ascontiguousarray(rgb, dtype=np.float32))
    ink = ink_map(rgba, paper)
    found = lines.find_lines(ink)
    return Sheet(lines.remove_lines(ink, found), found, paper)


def region_ink(
    img: Image.Image, region: Box, sheet: Sheet, longest: int, kept: np.ndarray | None = None
) -> np.ndarray:
    """The ink of `region` of the picture at up to `longest`, the lines the sheet found taken out of
    it too: a region cut close around writing shows too little of a line to tell it apart. With
    `kept` (where the sheet found the writing, on its own copy), only ink there counts: the closer
    look adds detail to what the whole picture showed, not new pieces (a sliver of shadow cut by the
    region's edge)."""
    rgba = as_array(img, longest, region)
    ink = ink_map(
        rgba, sheet.paper, min(img.size) * rgba.shape[1] / max(region.right - region.left, 1)
    )
    # without OpenCV: nothing was found that could be taken out
    if sheet.lines is None:
        return ink
    if kept is not None:
        ink = np.where(
            page.part_of(kept.astype(np.uint8), img.size, region, ink.shape) > 0,
            ink,
            np.float32(0.0),
        )
    if not sheet.lines.any():
        return ink
    near = page.part_of(sheet.lines, img.size, region, ink.shape)
    return lines.remove_lines(ink, lines.find_lines(ink, near))


def found_ink(img: Image.Image) -> np.ndarray:
    """What the reader takes for ink in the whole picture, (h, w) in [0, 1] on its working copy:
    light flattened, paper lines out, noise cleaned; for a user to see why a picture was read as it
    was."""
    return clean(extract_sheet(upright(img)).ink)


def locate(img: Image.Image, sheet: Sheet | None = None) -> tuple[np.ndarray, Box]:
    """Cleaned ink of the picture's digit region and its box: the digit is found on the sheet (a
    small copy of the whole picture), then cut out with a margin and examined again at up to
    WORK_SIZE."""
    sheet = sheet or extract_sheet(img)
    try:
        ink = clean(sheet.ink)
    except NoInkError:
        # it was not reduced: there is no more detail to see
        if max(sheet.ink.shape) >= max(img.size):
            raise
        # a digit a few pixels big on a big canvas averages away when reduced: look again at full
        # detail
        sheet = extract_sheet(img, min(max(img.size), MAX_DETAIL))
        ink = clean(sheet.ink)
    ink = page.keep_writing(ink, DIGIT_REACH)
    box = ink_bbox(ink)
    h, w = ink.shape
    longer = max(box.bottom - box.top, box.right - box.left)
    # big enough already, or seen at full size: nothing more to see
    if longer >= DETAIL_SIZE or (h, w) == (img.height, img.width):
        return ink, box
    # the margin leaves paper around the digit for the background model of the detail pass; the
    # scale is per axis, since rounding makes the two differ slightly
    crop = scale_box(box, (img.width / w, img.height / h), longer // 2 + 2, img.size)
    # the crop holds only what the sheet kept
    ink = clean(region_ink(img, crop, sheet, WORK_SIZE, ink > 0))
    return ink, ink_bbox(ink)


def to_field(crop: np.ndarray) -> np.ndarray:
    """One digit's ink (H, W) in [0, 1], cropped to its box -> MNIST's (28, 28) uint8: 20 px box,
    MNIST's stroke width, centre of mass at the centre."""
    crop = thicken(crop.astype(np.float32), STROKE_SHARE * max(crop.shape))
    field = centre_by_mass(match_stroke(fit_box(crop)))
    return np.clip(np.rint(field * 255), 0, 255).astype(np.uint8)


def preprocess(img: Image.Image, sheet: Sheet | None = None) -> Digit:
    """Any picture of one digit -> MNIST's 28x28 form (white on black, 20 px box, centred by mass);
    `sheet`, when the caller has made it already, is the upright picture's."""
    ink, box = locate(upright(img), sheet)
    return Digit(pixels=to_field(ink[box.top : box.bottom, box.left : box.right]))
