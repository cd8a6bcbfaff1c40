"""The Hershey stroke fonts' glyphs: non-digits for the negatives, digits as digits.

Run: pytest tests/data/synthetic/test_hershey.py
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from mnist_lit.data.synthetic import hershey, ink, pictograms

CPU = torch.device("cpu")


def test_every_listed_key_has_a_glyph_in_its_font():
    missing = [
        (font, key)
        for font, keys in hershey.NEGATIVE_KEYS.items()
        for key in keys
        if not hershey.glyph_strokes(font, key)
    ]
    assert not missing


def test_the_digit_bank_holds_every_digit_of_every_digit_font():
    _, _, labels = hershey.bank(True)
    assert torch.equal(labels.bincount(), torch.full((10,), len(hershey.DIGIT_FONTS)))
    assert (hershey.bank(False)[2] == -1).all()


def test_the_latin_faces_lend_no_digit_and_no_letter_written_like_one():
    for font in ("futural", "rowmans", "timesr", "timesi", "scripts", "cursive"):
        assert not set(hershey.NEGATIVE_KEYS[font]) & set("0123456789OoIlZzSsbBgqT|")


@pytest.mark.parametrize("digits", [False, True])
def test_glyphs_are_drawn_as_binary_ink_with_their_labels(digits):
    made, labels = hershey.generate_glyphs(40, digits, torch.Generator().manual_seed(3), CPU)
    assert made.shape == (40, 1, ink.HI, ink.HI)
    assert set(made.unique().tolist()) <= {0.0, 1.0}
    assert made.flatten(1).sum(1).gt(0).all()
    assert ((labels >= 0) & (labels <= 9)).all() if digits else (labels == -1).all()


def test_a_slanted_font_one_stays_a_sliver_not_a_box():
    points, pen, labels = hershey.bank(True)
    ones = (labels == 1).nonzero().flatten()[:1].repeat(8)
    drawn = ink.draw(
        points[ones], pen[ones], torch.Generator().manual_seed(0), CPU, turn=0.0, min_aspect=0.0
    )
    cols, rows = drawn[:, 0].any(1).sum(1), drawn[:, 0].any(2).sum(1)
    assert (cols < 0.6 * rows).all()


def test_every_pictogram_kind_draws_several_strokes_or_a_long_one():
    rng = np.random.default_rng(0)
    for kind in pictograms.KINDS:
        drawing = kind(rng)
        assert sum(len(stroke) for stroke in drawing) >= 3, kind.__name__


def test_without_the_hershey_fonts_training_says_what_to_install(monkeypatch):
    hershey._font.cache_clear()
    # an import of it now fails
    monkeypatch.setitem(sys.modules, "HersheyFonts", None)
    with pytest.raises(RuntimeError, match=r"mnist-lit\[strokes\]"):
        hershey.glyph_strokes("futural", "A")
    hershey._font.cache_clear()
