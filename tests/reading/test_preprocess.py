"""Each preprocessing step on synthetic pictures, then the whole pipeline.

Run: pytest tests/reading/test_preprocess.py
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_lit import IMAGE_SIZE
from mnist_lit.reading.preprocess import (
    BOX,
    COM_CENTRE,
    Box,
    NoInkError,
    centre_by_mass,
    clean,
    fit_box,
    ink_bbox,
    ink_map,
    preprocess,
    scale_box,
    upright,
)


def draw_seven(
    size=(300, 200), box=(120, 40, 180, 150), ink=(20, 20, 20), paper=(240, 240, 240), width=8
):
    """A '7' drawn with a pen: the shape is asymmetric, so flips and rotations show."""
    img = Image.new("RGB", size, paper)
    left, top, right, bottom = box
    ImageDraw.Draw(img).line(
        [(left, top), (right, top), (left + 10, bottom)], fill=ink, width=width
    )
    return img


def as_array(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float32) / 255.0


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf)


def test_exif_orientation_is_applied():
    img = draw_seven()
    exif = Image.Exif()
    # "rotate 90 CW to view"
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif, quality=95)
    buf.seek(0)
    shown = upright(Image.open(buf))
    assert shown.size == (200, 300)
    # and the prediction input equals that of the picture rotated by hand
    by_hand = preprocess(jpeg(img.transpose(Image.Transpose.ROTATE_270), 95)).pixels
    assert np.abs(preprocess(Image.open(buf)).pixels.astype(int) - by_hand).mean() < 4


def test_palette_with_transparency_becomes_rgba():
    img = Image.new("P", (40, 40), 0)
    img.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    img.info["transparency"] = 0
    assert upright(img).mode == "RGBA"


def test_transparent_background_uses_alpha_as_ink():
    rgba = np.zeros((60, 60, 4), np.float32)
    # dark ink colour everywhere, as paint apps export
    rgba[..., :3] = 0.1
    # the stroke is where alpha is
    rgba[20:40, 28:32, 3] = 1.0
    ink = ink_map(rgba)
    assert ink[30, 30] == 1.0
    assert ink[5, 5] == 0.0


@pytest.mark.parametrize(
    ("ink", "paper"), [((20, 20, 20), (235, 235, 235)), ((240, 240, 240), (15, 15, 15))]
)
def test_polarity_either_way_gives_bright_strokes(ink, paper):
    field = ink_map(as_array(draw_seven(ink=ink, paper=paper)))
    # on the 7's top bar
    assert field[40, 150] > 0.5
    # paper
    assert field[180, 30] < 1e-3


def test_coloured_ink_on_tinted_paper():
    field = ink_map(as_array(draw_seven(ink=(200, 40, 60), paper=(250, 215, 215))))
    assert field[40, 150] > 0.1
    assert field[180, 30] < 1e-3


def test_uneven_light_is_not_ink():
    img = as_array(draw_seven())
    ramp = np.linspace(0.55, 1.0, img.shape[1], dtype=np.float32)[None, :, None]
    ink = clean(ink_map(img * ramp))
    # the dark side of the sheet is still paper
    assert ink[:, :60].max() == 0.0
    assert ink[40, 150] > 0.9


def test_jpeg_noise_and_grain_are_suppressed():
    rng = np.random.default_rng(0)
    noisy = np.clip(as_array(draw_seven()) + rng.normal(0, 0.03, (200, 300, 1)), 0, 1)
    img = jpeg(Image.fromarray((noisy * 255).astype(np.uint8)), quality=60)
    ink = clean(ink_map(as_array(img)))
    # paper stays black
    assert (ink[150:, :100] > 0).mean() < 0.01
    assert ink[40, 150] > 0.5


def test_blank_picture_has_no_ink():
    rng = np.random.default_rng(1)
    paper = np.clip(0.9 + rng.normal(0, 0.02, (120, 160, 1)), 0, 1) * np.ones(3, np.float32)
    with pytest.raises(NoInkError, match="blank"):
        clean(ink_map(as_array(jpeg(Image.fromarray((paper * 255).astype(np.uint8)), 70))))


def test_bbox_ignores_a_stray_speck():
    ink = np.zeros((100, 100), np.float32)
    ink[30:70, 40:60] = 1.0
    # one speck of dust, far away
    ink[95, 2] = 1.0
    assert ink_bbox(ink) == Box(left=40, top=30, right=60, bottom=70)


def test_fit_box_keeps_aspect_ratio():
    tall = fit_box(np.ones((100, 50), np.float32))
    assert tall.shape == (BOX, BOX // 2)
    # small crops are scaled up
    wide = fit_box(np.ones((6, 12), np.float32))
    assert wide.shape == (BOX // 2, BOX)


def test_centre_of_mass_lands_at_mnists_centre():
    box = np.zeros((20, 10), np.float32)
    # mass in the upper rows: the box must sit low to centre it
    box[4:10] = 1.0
    field = centre_by_mass(box)
    assert field.shape == (IMAGE_SIZE, IMAGE_SIZE)
    rows = np.arange(IMAGE_SIZE)
    cy = (field.sum(axis=1) @ rows) / field.sum()
    cx = (field.sum(axis=0) @ rows) / field.sum()
    # lower than a plain centring puts it
    assert np.nonzero(field.sum(axis=1))[0][0] > (IMAGE_SIZE - BOX) // 2
    assert abs(cy - COM_CENTRE) <= 0.5
    assert abs(cx - COM_CENTRE) <= 0.5


def test_position_size_and_polarity_do_not_matter():
    reference = preprocess(draw_seven()).pixels.astype(int)
    moved = preprocess(
        draw_seven(size=(900, 700), box=(600, 300, 780, 640), width=24)
    ).pixels.astype(int)
    inverted = preprocess(draw_seven(ink=(250, 250, 250), paper=(10, 10, 10))).pixels.astype(int)
    assert np.abs(moved - reference).mean() < 12
    assert np.abs(inverted - reference).mean() < 4


def test_mnist_form_is_kept():
    img = draw_seven()
    pixels = preprocess(img).pixels
    assert pixels.dtype == np.uint8
    assert pixels.shape == (IMAGE_SIZE, IMAGE_SIZE)
    rows, cols = np.nonzero(pixels > 0)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 in (BOX, BOX + 1, BOX + 2)
    assert pixels[0].max() == 0
    # a black frame around the digit, as in MNIST
    assert pixels[:, 0].max() == 0
    # an MNIST-style picture goes through unchanged, up to the one-pixel shift that rounding the
    # centre of mass
    # allows when it falls near a half pixel
    again = preprocess(Image.fromarray(pixels)).pixels.astype(int)
    shifts = [np.roll(again, (dy, dx), axis=(0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    assert min(np.abs(shifted - pixels).mean() for shifted in shifts) < 8


def test_scale_box_grows_by_the_margin_and_stays_inside_the_picture():
    box = Box(left=10, top=5, right=30, bottom=25)
    assert scale_box(box, (2.0, 3.0), 4, (200, 200)) == Box(12, 3, 68, 87)
    assert scale_box(box, (2.0, 3.0), 20, (70, 60)) == Box(0, 0, 70, 60)
