"""The generated non-digits and the ink they are drawn in.  Run: pytest
tests/data/synthetic/test_negatives.py"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnist_lit.data.synthetic import hershey, ink, negatives, pictograms
from mnist_lit.reading.preprocess import BOX, COM_CENTRE
from tests.conftest import ROOT


def test_negatives_are_laid_out_like_preprocessed_pictures():
    made = negatives.generate_negatives(90, torch.Generator().manual_seed(0))
    assert made.shape == (90, 1, 28, 28)
    assert made.min() >= 0
    assert made.max() <= 1
    marked = made[:, 0] > 0.1
    rows, cols = marked.any(2).float(), marked.any(1).float()
    longer = torch.maximum(rows.sum(1), cols.sum(1))
    # the ink's longer side is about 20 px
    assert (longer - BOX).abs().float().median() <= 2
    mass = made[:, 0].sum((1, 2))
    cy = (made[:, 0].sum(2) * torch.arange(28)).sum(1) / mass
    # centred by mass
    assert (cy - COM_CENTRE).abs().median() < 1.5


def test_the_same_generator_seed_makes_the_same_negatives():
    first = negatives.generate_negatives(12, torch.Generator().manual_seed(5))
    again = negatives.generate_negatives(12, torch.Generator().manual_seed(5))
    assert torch.equal(first, again)


@pytest.mark.parametrize("char", ["K", "?", "#"])
def test_glyphs_render_from_the_bundled_fonts_as_binary_ink(char):
    from PIL import ImageFont

    font = ImageFont.truetype(str(negatives.font_dir() / negatives.FONTS[0]), negatives.FONT_PX)
    marked = negatives.render_glyph(char, font)
    assert marked is not None
    assert marked.shape == (ink.HI, ink.HI)
    assert marked.dtype == bool
    rows, cols = np.flatnonzero(marked.any(1)), np.flatnonzero(marked.any(0))
    longer = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    assert longer == pytest.approx(negatives.FILL * ink.HI, abs=2)


def test_a_character_without_ink_renders_as_none():
    from PIL import ImageFont

    font = ImageFont.truetype(str(negatives.font_dir() / negatives.FONTS[0]), negatives.FONT_PX)
    assert negatives.render_glyph(" ", font) is None


def test_overlapping_digits_hold_both_digits_ink():
    digits = torch.zeros(2, 1, 28, 28)
    # a bar
    digits[0, 0, 4:24, 13:15] = 1
    # a dash
    digits[1, 0, 13:15, 4:24] = 1
    lifted = ink.lift(digits)
    both = ink.overlaps(lifted, torch.Generator().manual_seed(0))
    assert both.shape == (2, 1, ink.HI, ink.HI)
    # each picture holds its own digit and some of its (smaller) partner
    assert both.sum() > lifted.sum() * 1.15


def grey_share(pictures: torch.Tensor) -> float:
    """Of the pixels with ink, the share that are neither background nor full ink: how soft the
    edges are."""
    marked = pictures > 0.1
    return float(((pictures < 0.9) & marked).sum() / marked.sum())


@pytest.mark.real_data
def test_negatives_have_edges_as_soft_as_mnist_digits():
    from mnist_lit.data.idx import load_split
    from tests.conftest import real_data_root

    images, _ = load_split(real_data_root(), "train")
    digits = images[:2000].float() / 255
    generator, cpu = torch.Generator().manual_seed(0), torch.device("cpu")
    letters = negatives.glyphs()[:256].float()
    drawn = [ink.distort(letters, generator)]
    drawn += [
        family(256, generator, cpu)
        for family in (negatives.scribbles, negatives.shapes, negatives.compositions)
    ]
    made = ink.fit_field(torch.cat(drawn))
    # the network must tell them apart by shape: with blurrier (or crisper) edges it would learn the
    # edges (dust,
    # specks and faint grain, is left out: it is all edge)
    assert grey_share(made) == pytest.approx(grey_share(digits), abs=0.1)


FAMILY_MAKERS = {
    "scribbles": negatives.scribbles,
    "shapes": negatives.shapes,
    "compositions": negatives.compositions,
    "dust": negatives.dust,
    "pictograms": pictograms.generate_pictograms,
    "strokes": lambda n, generator, device: hershey.generate_glyphs(n, False, generator, device)[0],
}


@pytest.mark.parametrize("family", sorted(FAMILY_MAKERS))
def test_each_family_draws_binary_ink_that_fills_the_canvas(family):
    drawn = FAMILY_MAKERS[family](16, torch.Generator().manual_seed(1), torch.device("cpu"))
    assert drawn.shape == (16, 1, ink.HI, ink.HI)
    assert set(drawn.unique().tolist()) <= {0.0, 1.0}
    for drawing in drawn[:, 0] > 0:
        rows, cols = drawing.any(1).nonzero().flatten(), drawing.any(0).nonzero().flatten()
        span = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
        # spread over the canvas, not a dot in a corner
        assert span > 0.5 * ink.HI


# the font packages kept for evaluating "not a digit" (bench/unseen.py), and what their files are
# called
RESERVED = (
    "dkg-handwriting",
    "fifthhorseman",
    "dkg.ttf",
    "dkgBd",
    "dkgIt",
    "dkgBI",
    "breip",
    "bwht",
    "BecauseWe",
    "femkeklaver",
    "humor-sans",
    "Humor-Sans",
    "comic-neue",
    "ComicNeue",
    "Comic Neue",
)


def test_every_training_family_has_its_share_of_a_bank():
    assert set(FAMILY_MAKERS) | {"glyphs"} == set(negatives.FAMILIES)
    assert sum(negatives.FAMILIES.values()) == pytest.approx(1.0)


def test_the_fonts_kept_for_evaluation_appear_nowhere_in_the_training_code():
    training = [
        ROOT / "train.py",
        *(ROOT / "mnist_lit").rglob("*.py"),
        *(ROOT / "conf").rglob("*.yaml"),
    ]
    named = [
        (path.name, word)
        for path in training
        for word in RESERVED
        if word.lower() in path.read_text().lower()
    ]
    assert not named
    # and the fonts training draws its glyphs from are none of them
    assert not [
        font for font in negatives.FONTS for word in RESERVED if word.lower() in font.lower()
    ]


def test_relevel_drops_faint_ink_and_brightens_the_rest_of_its_share_only():
    torch.manual_seed(0)
    pictures = torch.zeros(400, 1, 28, 28)
    # strokes
    pictures[:, :, 10:18, 10:18] = 0.6
    # a faint edge pixel
    pictures[:, :, 2, 2] = 0.05
    out = ink.relevel(pictures, 0.5)
    changed = (out != pictures).flatten(1).any(1)
    # about its share
    assert 0.4 < changed.float().mean() < 0.6
    # faint ink mostly dropped
    assert (out[changed][:, 0, 2, 2] == 0).float().mean() > 0.8
    # strokes never darker
    assert (out[changed][:, 0, 12, 12] >= 0.6).all()
    assert out.max() <= 1.0
    binary = (pictures > 0.5).float()
    # full ink stays full, paper stays paper
    assert torch.equal(ink.relevel(binary, 1.0), binary)
