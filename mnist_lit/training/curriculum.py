"""The negatives curriculum: each training batch gives up some of its digits to generated non-digits (taught as
the 11th class) and to its own digits redrawn with thinner or thicker strokes; a fixed set of validation
negatives measures how many the chosen threshold rejects.

Try it: pytest tests/training/test_curriculum.py
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mnist_lit.data.batches import unnormalize
from mnist_lit.training import ink, negatives, strokes

BANK_SIZE = 8192  # negatives made once per fit; each training step draws from them
VAL_NEGATIVES = 1024  # a fixed set, made alike on every DDP rank, for choosing the rejection threshold
VAL_NEGATIVES_SEED = 20170706  # fixed apart from `seed`: every run chooses its threshold on the same pictures
OVERLAP_SHARE = 0.25  # of each step's negatives: two of the batch's own digits drawn over each other
STROKE_CHANGES = (-2, -1, -1, 1)  # canvas pixels (1/3 of a field pixel) off each side of a restroked digit's strokes
FONT_DIGITS = 0.25  # of the restroked digits: digits of the Hershey fonts instead, typed, slanted and wobbled
RELEVEL_SHARE = 0.5  # of every step's pictures: re-inked as a picture read from a file is (ink.relevel)
MIN_INK_KEPT = 0.3  # a digit thinned to less than this share of its ink is kept as it was
REFILL_STEPS = 32  # training steps' worth of negatives made at once

Batch = tuple[torch.Tensor, torch.Tensor]
Augment = Callable[[torch.Tensor], torch.Tensor]


class Curriculum:
    """Makes each step's negatives and restroked digits, REFILL_STEPS steps at a time (a few large tensor ops cost
    far less than many small ones), for normalized batches of `mean` and `std`."""

    def __init__(self, share: float, mean: float, std: float) -> None:
        self.share, self.mean, self.std = share, mean, std
        self.bank: torch.Tensor | None = None  # (BANK_SIZE, 1, 28, 28) in [0, 1], made on first use per process
        self.pending: tuple[torch.Tensor, ...] | None = None  # made, not yet used: negatives, restroked, labels
        self.validation: torch.Tensor | None = None

    def rewire(self, batch: Batch, augment: Augment | None = None) -> tuple[Batch, torch.Tensor]:
        """The batch (B digits) as it trains: K restroked digits, B - 2K of its own, and K negatives apart, (K, 1,
        28, 28), so that a step costs what a plain one does; the loader's shuffle leaves out different digits each
        epoch."""
        x, y = batch
        extra, restroked, labels = self.draw(x, y, augment)
        k = len(extra)
        # digits and non-digits alike: how crisp a picture's edges are must tell nothing about what it shows
        pictures = ink.relevel(torch.cat([restroked, x[2 * k :], extra]) * self.std + self.mean, RELEVEL_SHARE)
        pictures = (pictures - self.mean) / self.std
        return (pictures[: len(x) - k], torch.cat([labels, y[2 * k :]])), pictures[len(x) - k :]

    def draw(
        self, x: torch.Tensor, y: torch.Tensor, augment: Augment | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For the batch x (B, 1, 28, 28), y (B,): K = share * B normalized non-digits (pictures from the bank, and
        pairs of the batch's digits drawn over each other), and K digits redrawn with thinner or thicker strokes,
        with their labels. Without those, stroke width would be a cue: MNIST's strokes are even, scribbles' are
        not, and a thin-penned digit would be answered "not a digit"."""
        k = max(1, round(self.share * len(x)))
        if self.pending is None or len(self.pending[0]) < k:
            self.pending = self._refill(x, y, k * REFILL_STEPS, augment)
        out = tuple(part[:k] for part in self.pending)
        self.pending = tuple(part[k:] for part in self.pending)
        return out[0].to(x.dtype), out[1].to(x.dtype), out[2]

    def _refill(
        self, x: torch.Tensor, y: torch.Tensor, count: int, augment: Augment | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.bank is None:  # once per process, on its device
            generator = torch.Generator().manual_seed(torch.initial_seed())
            self.bank = negatives.make(BANK_SIZE, generator, x.device)
        pairs = round(count * OVERLAP_SHARE)
        drawn = self.bank[torch.randint(len(self.bank), (count - pairs,)).to(x.device)]
        repeats = -(-count // len(x))
        # lifted once per batch digit, then repeated: lifting is per picture, so the copies come out the same
        digits = ink.lift(unnormalize(x, self.mean, self.std).float()).repeat(repeats, 1, 1, 1)[:count]
        made = torch.cat([drawn, ink.fit_field(ink.overlaps(digits[:pairs]))])
        # the digits' own augmentation too (data.augment): resampling softens edges, and negatives without it
        # would be told apart by their crisper edges
        if augment is not None:
            made = augment(made)
        change = torch.tensor(STROKE_CHANGES, device=x.device)[torch.randint(len(STROKE_CHANGES), (count,))]
        restroked = ink.widen(digits, change)
        kept = restroked.sum((1, 2, 3)) >= MIN_INK_KEPT * digits.sum((1, 2, 3))  # thinning must not erase it
        restroked = ink.fit_field(torch.where(kept.view(-1, 1, 1, 1), restroked, digits))
        labels = y.repeat(repeats)[:count].clone()
        # some digits give way to font digits: a typed 4 or a serif 1 is still a digit; augmented as the batch is
        typed = round(count * FONT_DIGITS)
        drawn_digits, labels[:typed] = strokes.make(typed, True, torch.default_generator, x.device)
        drawn_digits = ink.fit_field(drawn_digits)
        restroked[:typed] = augment(drawn_digits) if augment is not None else drawn_digits
        order = torch.randperm(count).to(x.device)
        return (made[order] - self.mean) / self.std, (restroked - self.mean) / self.std, labels

    def validation_negatives(self, device: torch.device) -> torch.Tensor:
        """The fixed validation negatives (VAL_NEGATIVES, 1, 28, 28), normalized, on `device`; made once."""
        if self.validation is None:
            generator = torch.Generator().manual_seed(VAL_NEGATIVES_SEED)
            made = negatives.make(VAL_NEGATIVES, generator, device)
            self.validation = (made - self.mean) / self.std
        return self.validation
