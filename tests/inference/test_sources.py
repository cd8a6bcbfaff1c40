"""The pictures a command is given, found and read, in parallel when there are many.

Run: pytest tests/inference/test_sources.py
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_lit.inference.sources import find_images, load_picture, load_pictures
from mnist_lit.reading.preprocess import MAX_DETAIL, preprocess
from tests.conftest import digit_picture


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing.png", "no such file or folder"),
        ("empty", "folder has no pictures"),
        ("*.gif", "no file matches"),
    ],
)
def test_bad_image_specs_get_one_line_errors(tmp_path, spec, message):
    (tmp_path / "empty").mkdir()
    found = find_images(str(tmp_path / spec))
    assert found.paths == []
    assert message in found.failed[0].error


def test_parallel_preprocessing_matches_serial(tmp_path):
    paths = [str(digit_picture(tmp_path / f"{i:03d}.png", value=i % 7)) for i in range(70)]
    serial, parallel = load_pictures(paths, workers=1), load_pictures(paths, workers=2)
    assert [p.image for p in parallel] == paths
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(serial, parallel))


def test_big_jpeg_is_decoded_reduced_and_reads_the_same(tmp_path):
    photo = Image.new("RGB", (3200, 2400), (225, 222, 215))
    # a 7
    ImageDraw.Draw(photo).line(
        [(1500, 500), (1700, 500), (1450, 1900)], fill=(30, 30, 40), width=60
    )
    path = tmp_path / "photo.jpg"
    photo.save(path, quality=90)
    with Image.open(path) as img:
        img.draft(img.mode, (MAX_DETAIL, MAX_DETAIL))
        # what load_picture decodes: half the work per side, still >= MAX_DETAIL
        assert img.size == (1600, 1200)
    # decoded at full size
    full = preprocess(Image.open(path)).pixels.astype(int)
    assert np.abs(load_picture(str(path)).pixels - full).mean() < 4
