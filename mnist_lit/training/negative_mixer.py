"""Mixing negatives into training batches: each batch gives up some of its digits to generated
non-digits (taught as the 11th class) and to its own digits redrawn with thinner or thicker strokes;
a fixed set of validation negatives measures how many the chosen threshold rejects.

Try it: pytest tests/training/test_negative_mixer.py
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mnist_lit.data.batches import unnormalize
from mnist_lit.data.synthetic import hershey, ink
from mnist_lit.data.synthetic.negatives import generate_negatives

# negatives made once per fit; each training step draws from them
BANK_SIZE = 8192
# a fixed set, made alike on every DDP rank, for choosing the rejection threshold
VAL_NEGATIVES = 1024
# fixed apart from `seed`: every run chooses its threshold on the same pictures
VAL_NEGATIVES_SEED = 20170706
# of each step's negatives: two of the batch's own digits drawn over each other
OVERLAP_SHARE = 0.25
# canvas pixels (1/3 of a field pixel) off each side of a restroked digit's strokes
STROKE_CHANGES = (-2, -1, -1, 1)
# of the restroked digits: digits of the Hershey fonts instead, typed, slanted and wobbled
FONT_DIGITS = 0.25
# of every step's pictures: re-inked as a picture read from a file is (ink.relevel)
RELEVEL_SHARE = 0.5
# a digit thinned to less than this share of its ink is kept as it was
MIN_INK_KEPT = 0.3
# training steps' worth of negatives made at once
REFILL_STEPS = 32

Batch = tuple[torch.Tensor, torch.Tensor]
Augment = Callable[[torch.Tensor], torch.Tensor]


class NegativeMixer:
    """Makes each step's negatives and restroked digits, REFILL_STEPS steps at a time (a few large
    tensor ops cost far less than many small ones), for normalized batches of `mean` and `std`.
    `augment` is the digits' own augmentation (data.augment), applied to the negatives too."""

    def __init__(
        self, share: float, mean: float, std: float, augment: Augment | None = None
    ) -> None:
        self.share, self.mean, self.std, self.augment = share, mean, std, augment
        # (BANK_SIZE, 1, 28, 28) in [0, 1], made on first use per process
        self.bank: torch.Tensor | None = None
        # made, not yet used: negatives, restroked digits, their labels
        self.pending: tuple[torch.Tensor, ...] | None = None
        self.validation: torch.Tensor | None = None

    def mix_batch(self, batch: Batch) -> tuple[Batch, torch.Tensor]:
        """The batch (B digits) as it trains: K restroked digits, B - 2K of its own, and K negatives
        apart, (K, 1, 28, 28), so that a step costs what a plain one does; the loader's shuffle
        leaves out different digits each epoch."""
        x, y = batch
        negatives, restroked, labels = self.take(x, y)
        k = len(negatives)
        # digits and non-digits alike: how crisp a picture's edges are must tell nothing about
        # what it shows
        pictures = torch.cat([restroked, x[2 * k :], negatives]) * self.std + self.mean
        pictures = (ink.relevel(pictures, RELEVEL_SHARE) - self.mean) / self.std
        digits = (pictures[: len(x) - k], torch.cat([labels, y[2 * k :]]))
        return digits, pictures[len(x) - k :]

    def take(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """For the batch x (B, 1, 28, 28), y (B,): K = share * B normalized non-digits (pictures
        from the bank, and pairs of the batch's digits drawn over each other), and K digits redrawn
        with thinner or thicker strokes, with their labels. Without those, stroke width would be a
        cue: MNIST's strokes are even, scribbles' are not, and a thin-penned digit would be
        answered "not a digit"."""
        k = max(1, round(self.share * len(x)))
        if self.pending is None or len(self.pending[0]) < k:
            self.pending = self.generate(x, y, k * REFILL_STEPS)
        taken = tuple(part[:k] for part in self.pending)
        self.pending = tuple(part[k:] for part in self.pending)
        return taken[0].to(x.dtype), taken[1].to(x.dtype), taken[2]

    def generate(self, x: torch.Tensor, y: torch.Tensor, count: int) -> tuple[torch.Tensor, ...]:
        """`count` normalized negatives, restroked digits and their labels, from the batch x, y."""
        # once per process, on its device
        if self.bank is None:
            generator = torch.Generator().manual_seed(torch.initial_seed())
            self.bank = generate_negatives(BANK_SIZE, generator, x.device)
        pairs = round(count * OVERLAP_SHARE)
        drawn = self.bank[torch.randint(len(self.bank), (count - pairs,)).to(x.device)]
        repeats = -(-count // len(x))
        # lifted once per batch digit, then repeated: lifting is per picture, so the copies come
        # out the same
        digits = ink.lift(unnormalize(x, self.mean, self.std).float())
        digits = digits.repeat(repeats, 1, 1, 1)[:count]
        made = torch.cat([drawn, ink.fit_field(ink.overlaps(digits[:pairs]))])
        # resampling softens edges, and negatives without the digits' augmentation would be told
        # apart by their crisper edges
        if self.augment is not None:
            made = self.augment(made)
        choice = torch.randint(len(STROKE_CHANGES), (count,))
        change = torch.tensor(STROKE_CHANGES, device=x.device)[choice]
        restroked = ink.widen(digits, change)
        # thinning must not erase a digit
        kept = restroked.sum((1, 2, 3)) >= MIN_INK_KEPT * digits.sum((1, 2, 3))
        restroked = ink.fit_field(torch.where(kept.view(-1, 1, 1, 1), restroked, digits))
        labels = y.repeat(repeats)[:count].clone()
        # some digits give way to font digits: a typed 4 or a serif 1 is still a digit; augmented
        # as the batch is
        typed = round(count * FONT_DIGITS)
        font_digits, labels[:typed] = hershey.generate_glyphs(
            typed, True, torch.default_generator, x.device
        )
        font_digits = ink.fit_field(font_digits)
        restroked[:typed] = self.augment(font_digits) if self.augment is not None else font_digits
        order = torch.randperm(count).to(x.device)
        normalized = (made[order] - self.mean) / self.std, (restroked - self.mean) / self.std
        return (*normalized, labels)

    def validation_negatives(self, device: torch.device) -> torch.Tensor:
        """The fixed validation negatives (VAL_NEGATIVES, 1, 28, 28), normalized, on `device`."""
        if self.validation is None:
            generator = torch.Generator().manual_seed(VAL_NEGATIVES_SEED)
            made = generate_negatives(VAL_NEGATIVES, generator, device)
            self.validation = (made - self.mean) / self.std
        return self.validation
