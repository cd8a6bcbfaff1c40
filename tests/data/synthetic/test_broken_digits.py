"""Negatives made from digits: mirrored, scalloped, looped and fused.

Run: pytest tests/data/synthetic/test_broken_digits.py
"""

from __future__ import annotations

import pytest
import torch

from mnist_lit.data.synthetic import broken_digits as bd
from mnist_lit.data.synthetic.ink import HI, lift
from tests.conftest import make_digits


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """Binary ink (40, 1, HI, HI) of synthetic digits, and their labels."""
    images, labels = make_digits(40, seed=3)
    return lift(torch.from_numpy(images[:, None]).float() / 255), torch.from_numpy(labels).long()


def test_each_kind_in_turn_makes_binary_pictures_of_the_canvas_size(digits):
    ink, labels = digits
    made = bd.broken_digits(ink, labels, 10, torch.Generator().manual_seed(0))
    assert made.shape == (10, 1, HI, HI)
    assert set(made.unique().tolist()) <= {0.0, 1.0}
    # none is blank
    assert bool((made.sum((1, 2, 3)) > 0).all())


def test_the_same_generator_seed_breaks_the_same_way(digits):
    ink, labels = digits
    first = bd.broken_digits(ink, labels, 8, torch.Generator().manual_seed(1))
    again = bd.broken_digits(ink, labels, 8, torch.Generator().manual_seed(1))
    assert torch.equal(first, again)


def test_a_mirrored_digit_is_the_digit_flipped_left_to_right(digits):
    ink, _ = digits
    assert torch.equal(bd.mirrored(ink)[..., 0], ink[..., -1])


def test_only_digits_that_stop_being_digits_are_mirrored_or_looped():
    # one 1 (whose mirror image is a 1) and one 2 (whose mirror image is no digit)
    ink = torch.zeros(2, 1, HI, HI)
    ink[0, 0, 10:70, 40:46] = 1
    ink[1, 0, 10:16, 20:60] = 1
    labels = torch.tensor([1, 2])
    made = bd.broken_digits(ink, labels, 4, torch.Generator().manual_seed(0))
    # the first of each kind in turn: mirrored from the 2 alone
    assert torch.equal(made[0], ink[1].flip(-1))


def test_a_looped_digit_keeps_its_ink_and_gains_a_smaller_turn_inside():
    # a ring, as a 0 is drawn
    coords = torch.arange(HI, dtype=torch.float32) - HI / 2
    radius = (coords.view(-1, 1) ** 2 + coords.view(1, -1) ** 2).sqrt()
    ring = ((radius > HI * 0.3) & (radius < HI * 0.36)).float().expand(4, 1, HI, HI)
    looped = bd.looped(ring, torch.Generator().manual_seed(0))
    assert bool((looped >= ring).all())
    inner = looped * (radius < HI * 0.28)
    # ink inside the ring, where there was none
    assert bool((inner.sum((1, 2, 3)) > 0).all())


def test_a_scalloped_digit_moves_its_strokes_but_keeps_about_its_ink(digits):
    ink, _ = digits
    waved = bd.scalloped(ink, torch.Generator().manual_seed(0))
    assert not torch.equal(waved, ink)
    ratio = waved.sum((1, 2, 3)) / ink.sum((1, 2, 3))
    assert bool(((ratio > 0.6) & (ratio < 1.6)).all())


def test_fused_digits_hold_ink_from_both_sides_of_the_canvas(digits):
    ink, _ = digits
    fused = bd.fused(ink, torch.Generator().manual_seed(0))
    half = HI // 2
    assert bool((fused[..., :half].sum((1, 2, 3)) > 0).all())
    assert bool((fused[..., half:].sum((1, 2, 3)) > 0).all())
