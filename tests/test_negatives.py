"""The generated non-digits.  Run: pytest tests/test_negatives.py"""

from __future__ import annotations

import pytest
import torch

from mnist_lit import negatives
from mnist_lit.preprocess import BOX, COM_CENTRE


def test_negatives_are_laid_out_like_preprocessed_pictures():
    made = negatives.make(90, torch.Generator().manual_seed(0))
    assert made.shape == (90, 1, 28, 28)
    assert made.min() >= 0
    assert made.max() <= 1
    ink = made[:, 0] > negatives.INK_THRESHOLD
    rows, cols = ink.any(2).float(), ink.any(1).float()
    longer = torch.maximum(rows.sum(1), cols.sum(1))
    assert (longer - BOX).abs().float().median() <= 2  # the ink's longer side is about 20 px
    mass = made[:, 0].sum((1, 2))
    cy = (made[:, 0].sum(2) * torch.arange(28)).sum(1) / mass
    assert (cy - COM_CENTRE).abs().median() < 1.5  # centred by mass


def test_the_same_generator_seed_makes_the_same_negatives():
    first = negatives.make(12, torch.Generator().manual_seed(5))
    again = negatives.make(12, torch.Generator().manual_seed(5))
    assert torch.equal(first, again)


@pytest.mark.parametrize("char", ["K", "?", "#"])
def test_glyphs_render_from_the_bundled_fonts(char):
    from PIL import ImageFont

    font = ImageFont.truetype(str(negatives.font_dir() / negatives.FONTS[0]), negatives.FONT_PX)
    field = negatives.render_glyph(char, font)
    assert field is not None
    assert field.shape == (28, 28)
    assert field.max() > 0.9


def test_overlapping_digits_hold_both_digits_ink():
    digits = torch.zeros(2, 1, 28, 28)
    digits[0, 0, 4:24, 13:15] = 1  # a bar
    digits[1, 0, 13:15, 4:24] = 1  # a dash
    both = negatives.overlaps(digits, torch.Generator().manual_seed(0))
    assert both.shape == (2, 1, 40, 40)
    assert both.sum() > digits.sum() * 1.5  # each picture holds its own digit and most of its partner
