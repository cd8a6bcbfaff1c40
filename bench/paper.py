"""Phone-style photos of digits on paper, for bench/photos.py: plain, ruled or squared paper;
ballpoint, felt pen, red pen or pencil; light falling off across the page, often a soft shadow; a
slight perspective tilt, blur, sensor noise and JPEG. The digits are MNIST *test* strokes or glyphs
of handwriting-style fonts.

Run: DATA_DIR=../shared/data .venv/bin/python bench/photos.py --ckpt <best.ckpt>

This generator is only for measuring: nothing in the app or its training is drawn by it, so its
habits cannot be learned. The handwriting fonts come from Debian packages (see HANDWRITING_FONTS);
without them, MNIST strokes only.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

PAPERS = ("plain", "ruled", "squared")
PENS = ("ballpoint", "felt", "red", "pencil")
# apt-get install fonts-kaushanscript fonts-kristi fonts-dancingscript fonts-klee
HANDWRITING_FONTS = (
    "/usr/share/fonts/opentype/kaushanscript/KaushanScript-Regular.otf",
    "/usr/share/fonts/truetype/kristi/Kristi.ttf",
    "/usr/share/fonts/opentype/dancingscript/DancingScript-Regular.otf",
    "/usr/share/fonts/opentype/dancingscript/DancingScript-Bold.otf",
    "/usr/share/fonts/truetype/klee/KleeOne-Regular.ttf",
    "/usr/share/fonts/truetype/klee/KleeOne-SemiBold.ttf",
)
# share of digits drawn from the fonts when they are installed
FONT_SHARE = 0.3
# the photo's longer side, px
SIDES = (640, 1600)
# how much paper the photo's longer side shows, in mm
MM_PER_SIDE = (60, 220)
# line spacing of ruled and squared paper
RULE_MM, SQUARE_MM = 8.0, 5.0
PEN_MM = {"ballpoint": (0.35, 0.6), "felt": (0.9, 1.8), "red": (0.4, 1.0), "pencil": (0.4, 0.8)}


@dataclass
class Condition:
    """What one photo is made of."""

    paper: str
    pen: str
    shadow: bool

    def name(self) -> str:
        """paper-pen-shadow, as the bench's table shows it."""
        return f"{self.paper}-{self.pen}-{'shadow' if self.shadow else 'even'}"


def fonts() -> list[str]:
    """The handwriting fonts installed here."""
    return [f for f in HANDWRITING_FONTS if Path(f).exists()]


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang and Suen's thinning of a 0/1 uint8 mask: its strokes' centre lines, one pixel wide and
    connected."""
    img = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            # P2..P9, clockwise
            p = [
                np.roll(np.roll(img, -dy, 0), -dx, 1)
                for dy, dx in ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
            ]
            count = sum(q.astype(np.int32) for q in p)
            turns = sum(((p[k] == 0) & (p[(k + 1) % 8] == 1)).astype(np.int32) for k in range(8))
            if step == 0:
                side = (p[0] * p[2] * p[4] == 0) & (p[2] * p[4] * p[6] == 0)
            else:
                side = (p[0] * p[2] * p[6] == 0) & (p[0] * p[4] * p[6] == 0)
            drop = (img == 1) & (count >= 2) & (count <= 6) & (turns == 1) & side
            if drop.any():
                img[drop] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1]


def prune(line: np.ndarray, rounds: int) -> np.ndarray:
    """The centre lines with spurs up to `rounds` px long cut off (and every end shortened as
    much)."""
    ring = np.ones((3, 3), np.float32)
    for _ in range(rounds):
        neighbours = (
            cv2.filter2D(line.astype(np.float32), -1, ring, borderType=cv2.BORDER_CONSTANT) - line
        )
        line = line & ~((line == 1) & (neighbours <= 1))
    return line


def stroke_mask(
    digit: np.ndarray, height: int, pen_px: float, rng: np.random.Generator
) -> np.ndarray:
    """An MNIST digit (28, 28) redrawn `height` px tall with a pen about `pen_px` wide: (h, w)
    coverage in [0, 1]: the centre lines of its strokes, drawn with a round pen."""
    # MNIST's box is 20 px of the 28
    scale = height / 20.0
    size = max(8, round(28 * scale))
    big = cv2.resize(digit.astype(np.float32) / 255.0, (size, size), interpolation=cv2.INTER_CUBIC)
    # a smooth outline
    big = cv2.GaussianBlur(big, (0, 0), 0.5 * scale)
    inside = (big > 0.45).astype(np.uint8)
    # a pen as wide as MNIST's own strokes: the digit's own outline
    if pen_px >= 0.7 * 2.35 * scale:
        return cv2.GaussianBlur(inside.astype(np.float32), (0, 0), 0.6)
    centre = prune(thin(inside), round(0.8 * scale))
    k = 2 * int(np.ceil(pen_px / 2)) + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    return cv2.GaussianBlur(cv2.dilate(centre * 255, disc).astype(np.float32) / 255.0, (0, 0), 0.6)


def font_mask(d: int, font: str, height: int, pen_px: float) -> np.ndarray:
    """A font's digit `height` px tall, thickened towards a pen about `pen_px` wide."""
    face = ImageFont.truetype(font, max(8, round(height * 1.35)))
    left, top, right, bottom = face.getbbox(str(d))
    img = Image.new("L", (right - left + 8, bottom - top + 8), 0)
    ImageDraw.Draw(img).text((4 - left, 4 - top), str(d), fill=255, font=face)
    mask = np.asarray(img, np.float32) / 255.0
    grow = round(pen_px / 3)
    if grow > 0:
        mask = cv2.dilate(
            mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        )
    return mask


def paper_sheet(
    cond: Condition, h: int, w: int, px_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """(h, w, 3) float RGB of the empty sheet, with its printed lines."""
    tint = np.array(
        [rng.uniform(235, 252), rng.uniform(232, 250), rng.uniform(222, 245)], np.float32
    )
    sheet = np.empty((h, w, 3), np.float32)
    sheet[:] = tint
    mottle = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 6) * 12
    sheet += mottle[..., None]
    if cond.paper == "plain":
        return sheet
    blue = np.array(
        [rng.uniform(120, 185), rng.uniform(160, 205), rng.uniform(215, 245)], np.float32
    )
    grey = np.array([170, 172, 178], np.float32) + rng.uniform(-20, 20)
    colour = blue if cond.paper == "ruled" or rng.random() < 0.5 else grey
    spacing = (RULE_MM if cond.paper == "ruled" else SQUARE_MM) * px_mm * rng.uniform(0.9, 1.1)
    thick = max(1, round(rng.uniform(0.15, 0.35) * px_mm))
    lines = np.zeros((h, w), np.uint8)
    for y in np.arange(rng.uniform(0, spacing), h, spacing):
        cv2.line(lines, (0, int(y)), (w, int(y)), 255, thick, cv2.LINE_AA)
    if cond.paper == "squared":
        for x in np.arange(rng.uniform(0, spacing), w, spacing):
            cv2.line(lines, (int(x), 0), (int(x), h), 255, thick, cv2.LINE_AA)
    strength = rng.uniform(0.5, 0.9)
    a = (lines.astype(np.float32) / 255.0 * strength)[..., None]
    sheet = sheet * (1 - a) + a * (colour * sheet / 255.0)
    # a red margin line
    if cond.paper == "ruled" and rng.random() < 0.5:
        x = int(rng.uniform(0.05, 0.3) * w)
        margin = np.zeros((h, w), np.uint8)
        cv2.line(
            margin, (x, 0), (x + int(rng.uniform(-0.02, 0.02) * h), h), 255, thick + 1, cv2.LINE_AA
        )
        a = (margin.astype(np.float32) / 255.0 * strength)[..., None]
        sheet = sheet * (1 - a) + a * (np.array([225, 80, 90], np.float32) * sheet / 255.0)
    return sheet


def pen_colour(pen: str, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The pen's RGB and its opacity."""
    if pen == "pencil":
        g = rng.uniform(60, 120)
        return np.array([g, g, g + 4], np.float32), rng.uniform(0.45, 0.8)
    if pen == "red":
        return np.array(
            [rng.uniform(170, 215), rng.uniform(20, 60), rng.uniform(30, 70)], np.float32
        ), 0.95
    # blue
    if rng.random() < 0.5:
        return np.array(
            [rng.uniform(15, 50), rng.uniform(30, 70), rng.uniform(110, 170)], np.float32
        ), 0.95
    k = rng.uniform(15, 45)
    return np.array([k, k, k + 5], np.float32), 0.95


def lighting(h: int, w: int, shadow: bool, rng: np.random.Generator) -> np.ndarray:
    """(h, w) brightness factor: light falling off across the page, a vignette, and perhaps a soft
    shadow."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xs / w + np.sin(angle) * ys / h) - 0.5
    light = 1.0 - rng.uniform(0.05, 0.35) * (ramp + 0.5)
    r2 = ((xs - w / 2) / w) ** 2 + ((ys - h / 2) / h) ** 2
    light *= 1.0 - rng.uniform(0.0, 0.35) * r2
    # the phone's or a hand's shadow: a big blob reaching in from one side, soft-edged
    if shadow:
        mask = np.zeros((h, w), np.uint8)
        cx, cy = (rng.uniform(-0.2, 1.2) * w, rng.uniform(-0.2, 1.2) * h)
        axes = (int(rng.uniform(0.3, 0.7) * w), int(rng.uniform(0.3, 0.7) * h))
        if rng.random() < 0.5:
            cv2.ellipse(mask, (int(cx), int(cy)), axes, rng.uniform(0, 180), 0, 360, 255, -1)
        else:
            x0, y0 = int(cx - axes[0] / 2), int(cy - axes[1] / 2)
            cv2.rectangle(mask, (x0, y0), (x0 + axes[0], y0 + axes[1]), 255, -1)
        soft = rng.uniform(0.005, 0.06) * max(h, w)
        blob = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), soft)
        light *= 1.0 - rng.uniform(0.3, 0.6) * blob
    return light


def photo(
    ink: list[tuple[np.ndarray, int, int]],
    cond: Condition,
    size: tuple[int, int],
    px_mm: float,
    rng,
) -> bytes:
    """A JPEG photo of masks placed at (mask, x, y) on a sheet under `cond`."""
    w, h = size
    sheet = paper_sheet(cond, h, w, px_mm, rng)
    colour, opacity = pen_colour(cond.pen, rng)
    cover = np.zeros((h, w), np.float32)
    for mask, x, y in ink:
        mh, mw = mask.shape
        x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + mw), min(h, y + mh)
        region = mask[y0 - y : y1 - y, x0 - x : x1 - x]
        np.maximum(cover[y0:y1, x0:x1], region, out=cover[y0:y1, x0:x1])
    # graphite catches on the paper's grain
    if cond.pen == "pencil":
        grain = cv2.GaussianBlur(rng.uniform(0, 1, (h, w)).astype(np.float32), (0, 0), 0.7)
        cover *= np.clip(0.4 + 1.2 * grain, 0, 1)
    a = (cover * opacity)[..., None]
    page = sheet * (1 - a) + a * (colour * sheet / 255.0)
    page *= lighting(h, w, cond.shadow, rng)[..., None]
    # a slight perspective tilt: each corner moved by up to 4% of the side
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src + rng.uniform(-0.04, 0.04, (4, 2)).astype(np.float32) * np.float32([w, h])
    page = cv2.warpPerspective(
        page, cv2.getPerspectiveTransform(src, dst), (w, h), borderMode=cv2.BORDER_REFLECT
    )
    sigma = rng.uniform(0.3, 1.5) * max(w, h) / 1000
    page = cv2.GaussianBlur(page, (0, 0), sigma)
    page += rng.normal(0, rng.uniform(2, 7), page.shape).astype(np.float32)
    out = io.BytesIO()
    Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).save(
        out, "JPEG", quality=int(rng.integers(60, 93))
    )
    return out.getvalue()


def digit_mask(
    digit: tuple[np.ndarray, int],
    height: int,
    pen_px: float,
    fonts_here: list[str],
    rng: np.random.Generator,
) -> np.ndarray:
    """An MNIST test digit, or (FONT_SHARE of the time) the same digit in a handwriting font, turned
    a little."""
    image, label = digit
    if fonts_here and rng.random() < FONT_SHARE:
        mask = font_mask(label, fonts_here[int(rng.integers(len(fonts_here)))], height, pen_px)
    else:
        mask = stroke_mask(image, height, pen_px, rng)
    angle = rng.uniform(-15, 15)
    mh, mw = mask.shape
    side = int(np.hypot(mh, mw)) + 2
    canvas = np.zeros((side, side), np.float32)
    canvas[(side - mh) // 2 : (side - mh) // 2 + mh, (side - mw) // 2 : (side - mw) // 2 + mw] = (
        mask
    )
    turn = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    canvas = cv2.warpAffine(canvas, turn, (side, side), flags=cv2.INTER_LINEAR)
    ys, xs = np.nonzero(canvas > 0.05)
    return canvas[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def make(
    digits: list[tuple[np.ndarray, int]], cond: Condition, fonts_here: list[str], rng
) -> bytes:
    """One photo of `digits` (MNIST images with labels) written on a line, under `cond`."""
    side = int(rng.integers(*SIDES))
    w, h = (side, side * 3 // 4) if rng.random() < 0.6 else (side * 3 // 4, side)
    px_mm = side / rng.uniform(*MM_PER_SIDE)
    # the digits' height: a tenth of the photo up to most of it for one digit; a line of several
    # fits across
    most = 0.75 * min(h, w / (0.8 * len(digits) + 0.2))
    height = int(rng.uniform(0.1 * min(h, w), max(0.1 * min(h, w) + 1, most)))
    pen_px = max(1.0, rng.uniform(*PEN_MM[cond.pen]) * px_mm)
    # no pen is wider than a fifth of the digit
    pen_px = min(pen_px, 0.18 * height)
    masks = [digit_mask(d, height, pen_px, fonts_here, rng) for d in digits]
    width = sum(m.shape[1] for m in masks) + int(0.25 * height) * (len(masks) - 1)
    x = int(rng.uniform(0.02 * w, max(0.02 * w + 1, w - width - 0.02 * w)))
    base = int(rng.uniform(0.05 * h + height, max(0.05 * h + height + 1, 0.95 * h)))
    placed = []
    for m in masks:
        placed.append(
            (m, x, base - m.shape[0] + int(rng.integers(-height // 12 - 1, height // 12 + 1)))
        )
        x += m.shape[1] + int(rng.uniform(0.12, 0.4) * height)
    return photo(placed, cond, (w, h), px_mm, rng)
