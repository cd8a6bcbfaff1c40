"""Photos of paper on synthetic pages: a shadow is not ink, paper lines go and the strokes across
them stay, pencil counts, a smudge elsewhere does not, and a 12 MP photo costs a bounded amount of
work.

Run: pytest tests/reading/test_page.py
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from mnist_lit.reading import page, pictures, preprocess, segment
from mnist_lit.reading.preprocess import clean, extract_sheet

PAPER = (236, 234, 226)
SIZE = (640, 480)
# a "1": one stroke from (x0, y0) down to (x1, y1)
STROKE = (160, 110, 170, 370)


def page_with_one(
    lines: str = "", ink: tuple[int, int, int] = (30, 35, 90), width: int = 6
) -> Image.Image:
    """A sheet of paper, `lines` ("ruled", "grid" or "") printed on it in light blue, and a "1"
    written over them."""
    img = Image.new("RGB", SIZE, PAPER)
    draw = ImageDraw.Draw(img)
    if lines:
        for y in range(20, SIZE[1], 32):
            draw.line([(0, y), (SIZE[0], y)], fill=(150, 185, 235), width=2)
    if lines == "grid":
        for x in range(12, SIZE[0], 32):
            draw.line([(x, 0), (x, SIZE[1])], fill=(150, 185, 235), width=2)
    x0, y0, x1, y1 = STROKE
    draw.line([(x0, y0), (x1, y1)], fill=ink, width=width)
    return img


def stroke_mask(scale: float, grow: int = 0) -> np.ndarray:
    """Where the "1" is, on a copy `scale` times the page's size, `grow` px wider."""
    img = Image.new("L", (round(SIZE[0] * scale), round(SIZE[1] * scale)), 0)
    x0, y0, x1, y1 = (round(v * scale) for v in STROKE)
    ImageDraw.Draw(img).line(
        [(x0, y0), (x1, y1)], fill=255, width=max(1, round(6 * scale)) + 2 * grow
    )
    return np.asarray(img) > 0


def found(img: Image.Image) -> tuple[np.ndarray, float]:
    """The cleaned ink of the whole page, and its scale against the page."""
    ink = clean(extract_sheet(img).ink)
    return ink, ink.shape[1] / SIZE[0]


def test_opencv_is_installed_with_the_test_setup():
    # the `photos` extra is part of `dev`, which `make install` installs: without it the tests below
    # would fail
    # one by one, so say why once
    assert page.available(), (
        "OpenCV is missing: pip install 'mnist-lit[photos]' (make install includes it)"
    )


def test_a_shadow_across_the_page_is_not_ink():
    img = page_with_one()
    # a phone's shadow over the right half, its edge crossing the whole page, soft over a few pixels
    shade = Image.new("L", SIZE, 255)
    ImageDraw.Draw(shade).rectangle((300, 0, SIZE[0], SIZE[1]), fill=110)
    shade = np.asarray(shade.filter(ImageFilter.GaussianBlur(6)), np.float32)[..., None] / 255.0
    shadowed = Image.fromarray((np.asarray(img, np.float32) * shade).astype(np.uint8))
    ink, scale = found(shadowed)
    near = stroke_mask(scale, grow=2)
    # nothing along the shadow's edge, nothing in the shadow
    assert ink[~near].sum() == 0
    assert (ink[stroke_mask(scale)] > 0).mean() > 0.8


def test_a_shadow_reaching_in_from_a_corner_does_not_win_over_a_faint_pencil_digit():
    # a thin, faint grey pencil "1"
    img = page_with_one(ink=(150, 150, 150), width=3)
    shade = Image.new("L", SIZE, 255)
    # a hand's shadow over the bottom right corner
    ImageDraw.Draw(shade).ellipse((300, 250, 800, 600), fill=150)
    shade = np.asarray(shade.filter(ImageFilter.GaussianBlur(4)), np.float32)[..., None] / 255.0
    shadowed = Image.fromarray((np.asarray(img, np.float32) * shade).astype(np.uint8))
    ink, (left, top, right, bottom) = preprocess.locate(shadowed)
    # the stroke is big enough to be boxed on the sheet itself
    scale = ink.shape[1] / SIZE[0]
    x0, y0, x1, y1 = STROKE
    assert (x0 - 6) * scale <= left
    assert right <= (x1 + 6) * scale
    assert (y0 - 6) * scale <= top
    assert bottom <= (y1 + 6) * scale


def test_a_shadow_edge_beside_the_writing_is_not_read_as_one_more_digit():
    img = page_with_one()
    shade = Image.new("L", SIZE, 255)
    # its edge inside the number's close crop
    ImageDraw.Draw(shade).rectangle((230, 60, SIZE[0], 420), fill=150)
    shade = np.asarray(shade.filter(ImageFilter.GaussianBlur(3)), np.float32)[..., None] / 255.0
    reading = segment.read(
        Image.fromarray((np.asarray(img, np.float32) * shade).astype(np.uint8)), "number"
    )
    assert len(reading.pieces) == 1
    left, top, right, bottom = reading.pieces[0].box
    assert STROKE[0] - 8 <= left
    assert right <= STROKE[2] + 8


def test_ink_inside_a_shadow_is_found_as_in_the_light():
    img = page_with_one()
    shade = Image.new("L", SIZE, 255)
    # the stroke lies inside the shadow
    ImageDraw.Draw(shade).ellipse((40, 60, 420, 460), fill=120)
    shade = np.asarray(shade.filter(ImageFilter.GaussianBlur(15)), np.float32)[..., None] / 255.0
    ink, scale = found(Image.fromarray((np.asarray(img, np.float32) * shade).astype(np.uint8)))
    assert ink[~stroke_mask(scale, grow=2)].sum() == 0
    assert (ink[stroke_mask(scale)] > 0).mean() > 0.8


@pytest.mark.parametrize("lines", ["ruled", "grid"])
def test_paper_lines_are_removed_and_the_stroke_across_them_stays_whole(lines):
    ink, scale = found(page_with_one(lines))
    near = stroke_mask(scale, grow=2)
    # every rule (and every grid column) is gone
    assert ink[~near].sum() == 0
    # whole: every row the stroke covers still has its ink, the rows where it crosses a line
    # included
    rows = np.nonzero(stroke_mask(scale).any(axis=1))[0]
    assert all(ink[r][near[r]].any() for r in rows)


def test_a_thick_red_margin_line_is_removed():
    img = page_with_one("ruled")
    ImageDraw.Draw(img).line([(60, 0), (64, SIZE[1])], fill=(225, 90, 100), width=3)
    ink, scale = found(img)
    assert ink[~stroke_mask(scale, grow=2)].sum() == 0


def test_grainy_pencil_is_found():
    rng = np.random.default_rng(0)
    img = page_with_one(ink=(115, 115, 118), width=7)
    # graphite catches on the paper's grain: a third of the stroke's pixels hold paper
    stroke = stroke_mask(1.0)
    pixels = np.asarray(img).copy()
    pixels[stroke & (rng.random(stroke.shape) < 0.33)] = PAPER
    ink, scale = found(Image.fromarray(pixels))
    assert ink[~stroke_mask(scale, grow=2)].sum() == 0
    assert (ink[stroke_mask(scale)] > 0).mean() > 0.6
    # a solid stroke reaches the model, not grey grain: as much of it as of the same stroke drawn
    # solid
    digit = preprocess.preprocess(Image.fromarray(pixels)).pixels
    solid = preprocess.preprocess(page_with_one(ink=(115, 115, 118), width=7)).pixels
    assert (digit > 128).sum() >= 0.8 * (solid > 128).sum()


def test_a_smudge_far_from_the_digit_does_not_widen_its_box():
    img = page_with_one()
    # a speck in a corner
    ImageDraw.Draw(img).ellipse((560, 40, 574, 52), fill=(60, 60, 60))
    ink, box = preprocess.locate(img)
    scale = ink.shape[1] / SIZE[0]
    assert box.right < 300 * scale
    assert box.top > 80 * scale


def test_a_12_megapixel_photo_is_read_with_a_bounded_amount_of_work(tmp_path, monkeypatch):
    img = Image.new("RGB", (4000, 3000), PAPER)
    ImageDraw.Draw(img).line([(2000, 1000), (1960, 2100)], fill=(30, 30, 40), width=40)
    path = tmp_path / "photo.jpg"
    img.save(path, quality=85)
    seen: list[tuple[int, int]] = []
    examined: list[int] = []
    real_upright, real_ink_map = preprocess.upright, preprocess.ink_map

    def upright(picture):
        seen.append(picture.size)
        return real_upright(picture)

    def ink_map(rgba, *args):
        examined.append(rgba.shape[0] * rgba.shape[1])
        return real_ink_map(rgba, *args)

    monkeypatch.setattr(preprocess, "upright", upright)
    monkeypatch.setattr(preprocess, "ink_map", ink_map)
    pictures.read_picture(str(path))
    # decoded at a reduced scale: JPEG's draft mode, never the 12 million pixels
    assert seen
    assert max(w * h for w, h in seen) <= 4 * preprocess.MAX_DETAIL**2
    # and examined on small copies only: a few working copies, whatever the photo's size
    assert examined
    assert sum(examined) <= 3 * preprocess.LOCATE_SIZE**2


def test_without_opencv_a_drawing_is_still_read(monkeypatch):
    monkeypatch.setattr(page, "cv2", None)
    digit = preprocess.preprocess(page_with_one()).pixels
    assert digit.shape == (28, 28)
    assert (digit > 128).sum() > 20
