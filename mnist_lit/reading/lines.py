"""Paper lines: ruled lines, squared grids and margins found on a page's ink and taken out of it, on
OpenCV (the `photos` extra; without it, pages keep their lines).

Try it: pytest tests/reading/test_page.py

Ruled lines, squared grids and margins are long, thin and straight, and run across most of the
picture; strokes are short, or thick, or both. A line's pixels are those of a long run along it that
is thin across it, so that a stroke crossing a line keeps the pixels where they meet.
"""

from __future__ import annotations

import numpy as np

try:
    import cv2
except ImportError:
    # the `photos` extra is not installed: page.available() is False and nothing here is called
    cv2 = None

# bits of a line map: rules across the page, upright lines (margins, a grid's columns)
ACROSS, ALONG = 1, 2
# a paper line holds straight runs at least this share of the picture's width (or height)
RUN_SHARE = 0.12
# ... and runs across at least this share of it
LINE_SPAN = 0.6
# rows (columns) a line may drift by over one run: tilted lines hold long runs after this much
# growth
TILT_PX = 2
# ink below this share of the strongest is too faint to be part of a line's shape
FAINT = 0.08
# px: a smaller picture is a digit's own crop, not a page with lines across it
MIN_PAGE = 120
# px: no shorter run is a paper line, however small the picture
MIN_LINE_RUN = 12
# a paper line is at most this share of the picture's shorter side wide ...
LINE_WIDTH = 0.02
# a direction's lines are as dark as this quantile of their pixels; ink this many times ...
LINE_LEVEL = 0.9
# ... darker than that, where a line is, was written over it
DARKER_THAN_LINE = 1.5
# ... or this many px: a pen stroke runs across a line for longer than that
MIN_LINE_WIDTH = 4


def _rect(along: int, across: int, direction: int) -> np.ndarray:
    """A rectangle `along` px along the lines of `direction` (ACROSS or ALONG) and `across` px
    across them."""
    return cv2.getStructuringElement(
        cv2.MORPH_RECT, (along, across) if direction == ACROSS else (across, along)
    )


def _thin(mask: np.ndarray, direction: int, widest: int) -> np.ndarray:
    """uint8: the mask's pixels where its ink runs no further than `widest` across lines of
    `direction`; a stroke crossing a line, or a thick bar along it, runs further."""
    return mask & (1 - cv2.morphologyEx(mask, cv2.MORPH_OPEN, _rect(1, widest + 1, direction)))


def _found(mask: np.ndarray, direction: int) -> np.ndarray:
    """uint8 (H, W), 1 on the long thin straight lines of `direction` that run across the
    picture."""
    h, w = mask.shape
    span = w if direction == ACROSS else h
    run = max(MIN_LINE_RUN, round(RUN_SHARE * span))
    if run >= span:
        return np.zeros_like(mask)
    thin = _thin(mask, direction, max(MIN_LINE_WIDTH, round(LINE_WIDTH * min(h, w))))
    # a slightly tilted line still runs straight
    grown = cv2.dilate(thin, _rect(1, 2 * TILT_PX + 1, direction))
    # ... and a faint one, unbroken
    grown = cv2.morphologyEx(grown, cv2.MORPH_CLOSE, _rect(run // 3, 1, direction))
    runs = cv2.morphologyEx(grown, cv2.MORPH_OPEN, _rect(run, 1, direction))
    # no straight run long enough anywhere: most pictures
    if not runs.any():
        return np.zeros_like(mask)
    # bridged where a stroke crosses it
    runs = cv2.morphologyEx(runs, cv2.MORPH_CLOSE, _rect(run, 1, direction))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(runs, connectivity=8)
    long = (
        stats[:, cv2.CC_STAT_WIDTH if direction == ACROSS else cv2.CC_STAT_HEIGHT]
        >= LINE_SPAN * span
    )
    # the background
    long[0] = False
    return long[labels].astype(np.uint8) & thin if long.any() else np.zeros_like(mask)


def find_lines(ink: np.ndarray, near: np.ndarray | None = None) -> np.ndarray:
    """uint8 (H, W): the thin ink on the paper's printed lines, ACROSS and ALONG bits; with `near`
    (the lines found on the whole picture, resampled to this part of it), only lines that lie there
    count: where writing fills a part of the picture, a stroke may run as far across it as a line
    does."""
    if near is None and min(ink.shape) < MIN_PAGE:
        return np.zeros(ink.shape, np.uint8)
    # the faintest ink (a line's own soft edge) is left out: it would merge the lines with their
    # surroundings
    mask = (ink > FAINT * float(ink.max())).astype(np.uint8)
    across = _found(mask, ACROSS)
    if near is not None:
        across &= near & ACROSS
    # a grid's crossings are thin once the rules across are gone: the upright lines take them
    along = _found(mask & (1 - across), ALONG)
    if near is not None:
        along &= (near & ALONG) >> 1
    return across * ACROSS | along * ALONG


def remove_lines(ink: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """The ink with find_lines's `lines` zeroed, except ink much darker than the line it lies on."""
    gone = np.zeros(ink.shape, bool)
    near = []
    for direction in (ACROSS, ALONG):
        line = (lines & direction) > 0
        # each direction's own level: a red margin is darker than the blue rules it crosses
        if line.any():
            gone |= line & (ink < DARKER_THAN_LINE * np.quantile(ink[line], LINE_LEVEL))
        near.append(cv2.dilate(line.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool))
    # where two lines cross, their inks add up: darker than either
    gone |= (lines > 0) & near[0] & near[1]
    return np.where(gone, np.float32(0.0), ink)
