"""Read a number written on one line: the ink's connected pieces, merged into digits (a 5's loose
bar, a 4 in two strokes, a broken 0), specks dropped, left to right; each digit normalized exactly
as a single digit is. Pieces too wide for one digit carry candidate cuts, which the classifier's
answers choose between (mnist_lit.reading.numbers).

Try it: python predict.py image=number.png read=number
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from mnist_lit.reading import page
from mnist_lit.reading.preprocess import (
    DETAIL_SIZE,
    Box,
    NoInkError,
    Sheet,
    clean,
    extract_sheet,
    ink_bbox,
    preprocess,
    region_ink,
    scale_box,
    to_field,
    upright,
)

# digits of a number stand no further apart than this share of a digit's size
LINE_REACH = 2.0
# how a picture is read: one digit, or a number when there are several
READS = ("auto", "digit", "number")
# the line of writing is examined at this height (its width follows)
LINE_HEIGHT = 64
# ... and at most this wide
MAX_LINE_WIDTH = 1024
# a piece with less than this share of the ink, and short, is a speck (JPEG, dust)
SPECK_SHARE = 0.03
# ... short: below this share of the line's height
SPECK_HEIGHT = 0.3
# a piece shorter than this share of the line's height is part of a digit, not one
FRAGMENT_HEIGHT = 0.45
# pieces whose columns overlap by this share of the narrower one's width are one digit
MERGE_OVERLAP = 0.4
# a piece wider than this many times the line's height may be two touching digits
WIDE = 0.9
# ... or wider than this many times the median piece's width, in a line of three or more
WIDER_THAN_TYPICAL = 1.6
# a picture's only piece may be two touching digits when it is this many times wider than tall
LONE_WIDE = 1.1
# a touching pair is cut between these shares of its width
CUT_RANGE = (0.25, 0.75)
# pointer jumps per labelling pass
JUMPS = 2
# candidate cuts tried per wide piece: the columns with the least ink
CUTS = 5


@dataclass
class Piece:
    """One digit's 28x28 pixels and its box in the picture's pixels; a wide piece also carries
    candidate splits into two, each (left, right)."""

    pixels: np.ndarray
    box: Box
    splits: list[tuple[Piece, Piece]] = field(default_factory=list)


@dataclass
class Reading:
    """A picture's digits, left to right; `single` when it was read as one digit, exactly as
    predict.py always has."""

    pieces: list[Piece]
    single: bool
    # in `auto` mode, the picture read as one digit: the answer if the pieces are no number
    whole: Piece | None = None


def digit_pixels(ink: np.ndarray) -> np.ndarray:
    """(H, W) ink in [0, 1] that holds one digit alone -> MNIST's (28, 28) uint8, as a single digit
    is made."""
    box = ink_bbox(ink)
    return to_field(ink[box.top : box.bottom, box.left : box.right])


def whole_picture(img: Image.Image, sheet: Sheet | None = None) -> Reading:
    """The picture read as one digit, exactly as predict.py has always read it; its box is the
    picture."""
    return Reading(
        [Piece(preprocess(img, sheet).pixels, Box(0, 0, img.width, img.height))], single=True
    )


def label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean mask: labels (H, W), 0 for background and 1..n, and n.

    Each ink pixel starts with its own number (its index + 1) and repeatedly takes the smallest in
    its 3x3 neighbourhood, then the number its number's pixel holds (pointer jumping): a component
    settles on its smallest number in a few passes of a few array operations each, instead of one
    pass per pixel of its length. With OpenCV installed, its labelling gives the same labels,
    faster."""
    if page.available():
        return page.components(mask)
    h, w = mask.shape
    # above every label; the padding's value
    big = np.int32(h * w + 1)
    labels = np.where(mask, np.arange(1, h * w + 1, dtype=np.int32).reshape(h, w), big)
    while True:
        padded = np.pad(labels, 1, constant_values=big)
        smallest = labels
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                smallest = np.minimum(smallest, padded[dy : dy + h, dx : dx + w])
        flat = np.where(mask, smallest, big).ravel()
        for _ in range(JUMPS):
            ink = flat < big
            flat[ink] = flat[flat[ink] - 1]
        smallest = flat.reshape(h, w)
        if np.array_equal(smallest, labels):
            break
        labels = smallest
    ids, dense = np.unique(np.where(mask, labels, 0), return_inverse=True)
    dense = dense.reshape(h, w).astype(np.int32)
    # no background at all
    if ids[0] != 0:
        dense += 1
    return dense, int(dense.max())


def line_ink(img: Image.Image, sheet: Sheet) -> tuple[np.ndarray, Box]:
    """The cleaned ink of the picture's line of writing at LINE_HEIGHT, and the region of the
    picture it covers."""
    coarse = page.keep_writing(clean(sheet.ink), LINE_REACH)
    box = ink_bbox(coarse)
    h, w = coarse.shape
    margin = max(2, (box.bottom - box.top) // 4)
    region = scale_box(box, (img.width / w, img.height / h), margin, img.size)
    rw, rh = region.right - region.left, region.bottom - region.top
    longest = min(MAX_LINE_WIDTH, max(LINE_HEIGHT, round(LINE_HEIGHT * rw / max(rh, 1))))
    return clean(region_ink(img, region, sheet, longest, coarse > 0)), region


def _box(cols: slice, rows: slice, region: Box, scale: tuple[float, float]) -> Box:
    """The box of `cols` and `rows` of the line's ink, in the picture's pixels."""
    sx, sy = scale
    return Box(
        round(region.left + cols.start * sx),
        round(region.top + rows.start * sy),
        round(region.left + cols.stop * sx),
        round(region.top + rows.stop * sy),
    )


def groups(labels: np.ndarray, n: int, mass: np.ndarray) -> list[list[int]]:
    """Component ids grouped into digits, left to right: specks dropped, column-overlapping pieces
    merged."""
    ys, xs = np.nonzero(labels)
    ids = labels[ys, xs]
    x0 = np.full(n + 1, 1 << 30)
    x1 = np.zeros(n + 1, int)
    y0 = np.full(n + 1, 1 << 30)
    y1 = np.zeros(n + 1, int)
    np.minimum.at(x0, ids, xs)
    np.maximum.at(x1, ids, xs + 1)
    np.minimum.at(y0, ids, ys)
    np.maximum.at(y1, ids, ys + 1)
    line = max(int(y1[1:].max() - y0[1:].min()), 1)
    total = mass[1:].sum()
    kept = [
        k
        for k in range(1, n + 1)
        if mass[k] >= SPECK_SHARE * total or (y1[k] - y0[k]) >= SPECK_HEIGHT * line
    ]
    kept.sort(key=lambda k: (x0[k] + x1[k]) / 2)
    merged: list[list[int]] = []
    spans: list[list[int]] = []
    # a loose bar, a broken stroke's end
    small = [k for k in kept if (y1[k] - y0[k]) < FRAGMENT_HEIGHT * line]
    kept = [k for k in kept if k not in small]
    for k in kept:
        if merged:
            a0, a1 = spans[-1]
            overlap = min(a1, x1[k]) - max(a0, x0[k])
            if overlap >= MERGE_OVERLAP * min(a1 - a0, x1[k] - x0[k]):
                merged[-1].append(k)
                spans[-1] = [min(a0, x0[k]), max(a1, x1[k])]
                continue
        merged.append([k])
        spans.append([int(x0[k]), int(x1[k])])
    # nothing of a digit's height: read the fragments as one
    if not merged:
        return [sorted(small)] if small else []
    # each fragment joins the digit whose columns are nearest its own
    for k in small:
        centre = (x0[k] + x1[k]) / 2
        nearest = min(
            range(len(spans)), key=lambda g: max(spans[g][0] - centre, centre - spans[g][1], 0)
        )
        merged[nearest].append(k)
    return merged


def _piece(ink: np.ndarray, region: Box, scale: tuple[float, float]) -> Piece:
    """A digit from ink that holds it alone (zero elsewhere)."""
    rows, cols = np.nonzero(ink.any(axis=1))[0], np.nonzero(ink.any(axis=0))[0]
    box = _box(slice(cols[0], cols[-1] + 1), slice(rows[0], rows[-1] + 1), region, scale)
    return Piece(digit_pixels(ink), box)


def cuts(ink: np.ndarray) -> list[int]:
    """Candidate columns to cut a wide piece at: the CUTS columns with the least ink in its middle,
    apart."""
    cols = np.nonzero(ink.any(axis=0))[0]
    left, width = int(cols[0]), int(cols[-1] - cols[0] + 1)
    lo, hi = left + int(CUT_RANGE[0] * width), left + int(CUT_RANGE[1] * width)
    profile = ink[:, lo:hi].sum(axis=0)
    chosen: list[int] = []
    for c in np.argsort(profile, kind="stable"):
        if all(abs(int(c) - d) > 2 for d in chosen):
            chosen.append(int(c))
        if len(chosen) == CUTS:
            break
    return [lo + c for c in chosen]


def line_pieces(ink: np.ndarray, region: Box) -> list[Piece]:
    """The digits of a line's ink, left to right, with candidate cuts for those that may be two
    touching."""
    mask = ink > 0
    labels, n = label(mask)
    if n == 0:
        raise NoInkError("no ink found: the picture is blank")
    mass = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=n + 1)
    found = groups(labels, n, mass)
    scale = (
        (region.right - region.left) / ink.shape[1],
        (region.bottom - region.top) / ink.shape[0],
    )
    rows = np.nonzero(np.isin(labels, [k for g in found for k in g]).any(axis=1))[0]
    # the line's height: from the highest kept ink to the lowest
    line = int(rows[-1] - rows[0] + 1)
    pieces = []
    alones = [np.where(np.isin(labels, g), ink, 0.0) for g in found]
    widths = [int(np.ptp(np.nonzero(a.any(axis=0))[0])) + 1 for a in alones]
    typical = float(np.median(widths))
    for alone, width in zip(alones, widths):
        piece = _piece(alone, region, scale)
        # wider than a digit is tall, or than its neighbours are wide: perhaps two digits that touch
        wide = width > WIDE * line or (len(widths) >= 3 and width > WIDER_THAN_TYPICAL * typical)
        if wide and line >= DETAIL_SIZE // 4:
            for c in cuts(alone):
                left, right = alone.copy(), alone.copy()
                left[:, c:] = 0.0
                right[:, :c] = 0.0
                if left.any() and right.any():
                    piece.splits.append((_piece(left, region, scale), _piece(right, region, scale)))
        pieces.append(piece)
    return pieces


def read(img: Image.Image, mode: str = "auto") -> Reading:
    """The digits of a picture: one (mode `digit`, or `auto` with one piece) or a line of them
    (`number`)."""
    img = upright(img)
    if mode == "digit":
        return whole_picture(img)
    sheet = extract_sheet(img)
    try:
        ink, region = line_ink(img, sheet)
    except NoInkError:
        if mode == "number":
            raise
        # a digit a few pixels big on a big canvas fades away at the line's working size:
        # single-digit reading
        # looks again at full detail
        return whole_picture(img, sheet)
    pieces = line_pieces(ink, region)
    if mode == "number":
        return Reading(pieces, single=len(pieces) == 1 and not pieces[0].splits)
    # auto: one piece is one digit, read exactly as predict.py reads a single digit, so that its
    # answer does not
    # change; only a piece much wider than tall may be two touching digits, and
    # Predictor.fill_answers cuts it only on
    # strong evidence (a heart or an "m" halves into two digit-like strokes)
    whole = Piece(preprocess(img, sheet).pixels, region)
    if len(pieces) == 1:
        box = pieces[0].box
        wide = box.right - box.left > LONE_WIDE * (box.bottom - box.top)
        splits = pieces[0].splits if wide else []
        return Reading([Piece(whole.pixels, pieces[0].box, splits)], single=True)
    return Reading(pieces, single=False, whole=whole)
