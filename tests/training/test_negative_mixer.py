"""Mixing negatives into batches: what each training step gives up and gets, and the fixed
validation negatives.

Run: pytest tests/training/test_negative_mixer.py
"""

from __future__ import annotations

import pytest
import torch

from mnist_lit.data import NORMALIZATIONS
from mnist_lit.training.negative_mixer import (
    FONT_DIGITS,
    REFILL_STEPS,
    VAL_NEGATIVES,
    NegativeMixer,
)

MEAN, STD = NORMALIZATIONS["mnist"]
SHARE = 0.125


def batch(size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalized digit-like pictures (a bar at a place per label) and their labels."""
    torch.manual_seed(0)
    y = torch.arange(size) % 10
    x = torch.zeros(size, 1, 28, 28)
    for i, k in enumerate(y.tolist()):
        x[i, 0, 4 + 2 * k : 6 + 2 * k, 6:22] = 1.0
    return (x - MEAN) / STD, y


def test_each_step_draws_its_share_of_negatives_and_restroked_digits_with_the_batch_labels():
    x, y = batch()
    mixer = NegativeMixer(SHARE, MEAN, STD)
    extra, restroked, labels = mixer.take(x, y)
    k = round(SHARE * len(x))
    assert extra.shape == restroked.shape == (k, 1, 28, 28)
    assert set(labels.tolist()) <= set(y.tolist())
    # back to [0, 1]: normalized as the batch is
    pixels = torch.cat([extra, restroked]) * STD + MEAN
    assert pixels.min() >= -1e-5
    assert pixels.max() <= 1 + 1e-5
    # every restroked digit keeps its ink
    assert (restroked * STD + MEAN).flatten(1).sum(1).gt(1).all()


def test_a_refill_serves_refill_steps_steps_before_the_next_one():
    x, y = batch()
    mixer = NegativeMixer(SHARE, MEAN, STD)
    mixer.take(x, y)
    bank = mixer.bank
    k = round(SHARE * len(x))
    assert len(mixer.pending[0]) == k * (REFILL_STEPS - 1)
    for _ in range(REFILL_STEPS - 1):
        mixer.take(x, y)
    assert len(mixer.pending[0]) == 0
    mixer.take(x, y)
    assert len(mixer.pending[0]) == k * (REFILL_STEPS - 1)
    # made once per process
    assert mixer.bank is bank


def test_mix_batch_keeps_the_step_size_and_sets_the_negatives_apart():
    x, y = batch()
    (digits, labels), extra = NegativeMixer(SHARE, MEAN, STD).mix_batch((x, y))
    k = len(extra)
    # with the k negatives, the step costs what a plain one does
    assert len(digits) == len(labels) == len(x) - k
    assert torch.equal(digits[k:], x[2 * k :])
    assert torch.equal(labels[k:], y[2 * k :])


def test_the_negatives_and_the_font_digits_are_augmented_like_the_digits_when_the_data_is():
    x, y = batch()
    seen = []

    def augment(pictures: torch.Tensor) -> torch.Tensor:
        seen.append(pictures.shape)
        return pictures.flip(-1)

    NegativeMixer(SHARE, MEAN, STD, augment).take(x, y)
    count = round(SHARE * len(x)) * REFILL_STEPS
    assert seen == [(count, 1, 28, 28), (round(count * FONT_DIGITS), 1, 28, 28)]


def test_a_share_of_the_restroked_digits_are_font_digits_with_their_own_labels():
    x, y = batch()
    # one label per place: a font digit's label is told apart from the batch's order
    x, y = x[:10], y[:10]
    mixer = NegativeMixer(SHARE * 10, MEAN, STD)
    _, restroked, labels = mixer.generate(x, y, 400)
    typed = round(400 * FONT_DIGITS)
    own = y.repeat(40)[:400]
    # the font digits' labels are their own
    assert not torch.equal(labels[:typed], own[:typed])
    assert torch.equal(labels[typed:], own[typed:])
    assert set(labels[:typed].tolist()) == set(range(10))
    bars = (x * STD + MEAN)[:, 0].gt(0.5).float()
    # a font digit is not one of the batch's bars: its ink is spread over more than two rows
    assert (restroked[:typed] * STD + MEAN)[:, 0].gt(0.5).any(2).sum(1).float().mean() > bars.any(
        2
    ).sum(1).max()


@pytest.mark.parametrize("seed", [0, 1])
def test_the_validation_negatives_are_the_same_pictures_whatever_the_training_seed(seed):
    torch.manual_seed(seed)
    made = NegativeMixer(SHARE, MEAN, STD).validation_negatives(torch.device("cpu"))
    torch.manual_seed(seed + 100)
    again = NegativeMixer(SHARE, MEAN, STD).validation_negatives(torch.device("cpu"))
    assert made.shape == (VAL_NEGATIVES, 1, 28, 28)
    assert torch.equal(made, again)
