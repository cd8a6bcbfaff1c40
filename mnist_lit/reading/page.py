"""Photos of paper: flatten the light, take out the paper's printed lines, keep the writing. OpenCV (the `photos`
extra) does the morphology; without it, pictures are read with the smooth paper fit of
mnist_lit.reading.surface alone, and paper lines stay.

Try it: pytest tests/reading/test_page.py

Light first. Paper under a lamp, a window or a phone's shadow is never evenly lit, but it is smooth at the scale of
a stroke or brighter than the ink at least: a greyscale closing (the brightest value nearby, then the darkest of
those) with a window wider than any stroke fills the strokes in and keeps everything broader, a shadow's edge
included. Ink is how much darker a pixel is than the paper around it, as a ratio, so that ink in a shadow counts
as much as ink in the light, and a shadow's edge, which the closing keeps, is no ink at all.

Then lines. Ruled lines, squared grids and margins are long, thin and straight, and run across most of the
picture; strokes are short, or thick, or both. A line's pixels are those of a long run along it that is thin across
it, so that a stroke crossing a line keeps the pixels where they meet.
"""

from __future__ import annotations

import numpy as np

try:
    import cv2
except ImportError:  # the `photos` extra is not installed
    cv2 = None
else:
    cv2.setNumThreads(1)  # one picture per process, one process per core: threads would fight them for cores

WINDOWS = (0.06, 0.12, 0.25, 0.5)  # the windows the paper may be estimated in, as shares of the shorter side
PLATEAU = 1.15  # a window finds all the strokes when the next wider one finds no more than this much more ink
GLOBAL_GAIN = 2.0  # the whole picture's paper level is considered when it finds this many times more ink ...
SHARP_EDGE = 0.25  # ... with edges as steep as a stroke's: this share of the contrast per px; a shadow's are softer
NEAR = 0.15  # ink within this share of the picture's shorter side of the writing is part of it
PEAK_RANK = 8  # the paper's level over the whole picture: its 8th brightest pixel, robust to a hot pixel or two
MIN_WINDOW = 3  # px
ACROSS, ALONG = 1, 2  # bits of a line map: rules across the page, upright lines (margins, a grid's columns)
SMALL_SIZE = 80  # longer side of the copy that the polarity and the paper's window are judged on
FLOOR_GRID = 32  # the paper's spread is measured on about this many samples a side
NOISE_SIGMAS = 4.0  # ink within this many robust sigmas of the paper's own spread is grain, noise or JPEG
RUN_SHARE = 0.12  # a paper line holds straight runs at least this share of the picture's width (or height)
LINE_SPAN = 0.6  # ... and runs across at least this share of it
TILT_PX = 2  # rows (columns) a line may drift by over one run: tilted lines hold long runs after this much growth
FAINT = 0.08  # ink below this share of the strongest is too faint to be part of a line's shape
MIN_PAGE = 120  # px: a smaller picture is a digit's own crop, not a page with lines across it
MIN_LINE_RUN = 12  # px: no shorter run is a paper line, however small the picture
LINE_WIDTH = 0.02  # a paper line is at most this share of the picture's shorter side wide ...
LINE_LEVEL = 0.9  # a direction's lines are as dark as this quantile of their pixels; ink this many times ...
DARKER_THAN_LINE = 1.5  # ... darker than that, where a line is, was written over it
MIN_LINE_WIDTH = 4  # ... or this many px: a pen stroke runs across a line for longer than that


def available() -> bool:
    """Whether OpenCV is installed, so that pages are flattened and their lines taken out."""
    return cv2 is not None


def _floor(values: np.ndarray) -> float:
    """The level below which `values` (H, W) are the paper's own spread: median plus NOISE_SIGMAS robust sigmas,
    on a grid of about FLOOR_GRID x FLOOR_GRID samples."""
    sample = values[:: max(1, values.shape[0] // FLOOR_GRID), :: max(1, values.shape[1] // FLOOR_GRID)].ravel()
    middle = sample.size // 2
    centre = float(np.partition(sample, middle)[middle])
    return centre + NOISE_SIGMAS * 1.4826 * float(np.partition(np.abs(sample - centre), middle)[middle])


def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean mask: labels (H, W) int32, 0 for background and 1..n in raster order of
    their first pixel, and n."""
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return labels, n - 1


def reduced(rgb: np.ndarray, longest: int) -> np.ndarray:
    """(H, W, 3) area-averaged so that its longer side is at most `longest`."""
    scale = longest / max(rgb.shape[:2])
    if scale >= 1:
        return rgb
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _small_luma(rgb: np.ndarray) -> np.ndarray:
    return np.clip(cv2.cvtColor(reduced(rgb, SMALL_SIZE), cv2.COLOR_RGB2GRAY) * 255.0, 0, 255).astype(np.uint8)


def dark_ink(luma: np.ndarray) -> bool:
    """Whether the ink of a small grey copy (uint8) is darker than its paper (pen on paper) rather than lighter
    (chalk, MNIST itself): against the local median, the strongest deviations go one way. The median follows a
    shadow's edge, and the deviations either side of it cancel; strokes, however few, are all on one side."""
    side = max(3, round(WINDOWS[-1] * min(luma.shape))) | 1
    diff = luma.astype(np.float32) - cv2.medianBlur(luma, side)
    floor = _floor(np.abs(diff))
    darker, lighter = (np.maximum(v - floor, 0.0) for v in (-diff, diff))
    return float(np.einsum("ij,ij", darker, darker)) >= float(np.einsum("ij,ij", lighter, lighter))


def paper_scale(luma: np.ndarray, dark: bool) -> float | None:
    """The window, as a share of the shorter side, that the paper is estimated in, judged on a small grey copy:
    the narrowest beyond which a wider one finds little more ink (a top-hat's total), so that the paper follows
    shadows as closely as the strokes' width allows. None when the whole picture's paper level finds far more ink
    than that, with edges as steep as a stroke's: strokes as broad as the picture itself (a marker on a small
    canvas), not a shadow, whose edge is soft."""
    op = cv2.MORPH_BLACKHAT if dark else cv2.MORPH_TOPHAT
    # the shares as the small copy has them: a few px wide at least, so that some windows come out the same
    shares = sorted({_side(luma, share) / min(luma.shape) for share in WINDOWS})
    hats = [
        cv2.morphologyEx(luma, op, _window(luma, share), borderType=cv2.BORDER_REFLECT).astype(np.float32)
        for share in shares
    ]
    grey = luma.astype(np.float32)
    level = float(
        np.partition(grey.ravel(), -PEAK_RANK)[-PEAK_RANK] if dark else np.partition(grey.ravel(), PEAK_RANK)[PEAK_RANK]
    )
    hats.append(np.maximum(level - grey if dark else grey - level, 0))  # against the whole picture's paper
    energy = [float(np.maximum(hat - _floor(hat), 0).sum()) for hat in hats]
    chosen = next((k for k in range(len(shares) - 1) if energy[k + 1] <= PLATEAU * energy[k]), len(shares) - 1)
    if energy[-1] <= GLOBAL_GAIN * energy[chosen]:
        return shares[chosen]
    whole = hats[-1]
    cut = max(otsu_level(whole), _floor(whole))
    extra = (whole > cut) & ~cv2.dilate((hats[chosen] > cut).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    edge = extra & ~cv2.erode(extra.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if not edge.any():
        return shares[chosen]
    slope = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)) / 8.0
    sharpness = float(np.median(slope[edge])) / max(float(np.median(whole[extra])), 1.0)
    return None if sharpness >= SHARP_EDGE else shares[chosen]


def _side(picture: np.ndarray, share: float) -> int:
    """The window's side in px for a picture: `share` of its shorter side, odd, at least MIN_WINDOW."""
    return max(MIN_WINDOW, round(share * min(picture.shape[:2]))) | 1


def _window(picture: np.ndarray, share: float) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_RECT, (_side(picture, share),) * 2)


def _contrast(rgb: np.ndarray, window: np.ndarray, dark: bool) -> np.ndarray:
    """(H, W) float32: how far each pixel stands out from the paper around it, less the paper's own spread."""
    if dark:
        paper = cv2.morphologyEx(rgb, cv2.MORPH_CLOSE, window, borderType=cv2.BORDER_REFLECT)
        contrast = 1.0 - rgb / np.maximum(paper, 1e-3)  # a ratio: the same in a shadow as in the light
    else:  # light ink on a dark ground: its excess over the ground; a dark ground shows no shadow to speak of
        contrast = rgb - cv2.morphologyEx(rgb, cv2.MORPH_OPEN, window, borderType=cv2.BORDER_REFLECT)
    # every channel counts: black, blue and red pens, and grey pencil, all take light away from some of them
    ink = np.sqrt(np.einsum("ijk,ijk->ij", contrast, contrast) * np.float32(1.0 / 3.0))
    return np.maximum(ink - np.float32(_floor(ink)), np.float32(0.0))


def flat_ink(rgb: np.ndarray) -> np.ndarray | None:
    """(H, W) float32 ink of an (H, W, 3) RGB picture in [0, 1], dark on light or light on dark: 0 on paper however
    it is lit, growing with the ink's contrast against the paper around it. None when its strokes are too broad
    for any window: then the paper is best fitted over the whole picture."""
    luma = _small_luma(rgb)
    dark = dark_ink(luma)
    share = paper_scale(luma, dark)
    return None if share is None else _contrast(rgb, _window(rgb, share), dark)


def otsu_level(ink: np.ndarray) -> float:
    """Otsu's threshold of the ink, by OpenCV on 8 bits of it."""
    top = float(ink.max())
    if top <= 0:
        return 0.0
    level, _ = cv2.threshold(np.clip(ink * (255.0 / top), 0, 255).astype(np.uint8), 0, 255, cv2.THRESH_OTSU)
    return float(level) * top / 255.0


def _rect(along: int, across: int, direction: int) -> np.ndarray:
    """A rectangle `along` px along the lines of `direction` (ACROSS or ALONG) and `across` px across them."""
    return cv2.getStructuringElement(cv2.MORPH_RECT, (along, across) if direction == ACROSS else (across, along))


def _thin(mask: np.ndarray, direction: int, widest: int) -> np.ndarray:
    """uint8: the mask's pixels where its ink runs no further than `widest` across lines of `direction`; a stroke
    crossing a line, or a thick bar along it, runs further."""
    return mask & (1 - cv2.morphologyEx(mask, cv2.MORPH_OPEN, _rect(1, widest + 1, direction)))


def _found(mask: np.ndarray, direction: int) -> np.ndarray:
    """uint8 (H, W), 1 on the long thin straight lines of `direction` that run across the picture."""
    h, w = mask.shape
    span = w if direction == ACROSS else h
    run = max(MIN_LINE_RUN, round(RUN_SHARE * span))
    if run >= span:
        return np.zeros_like(mask)
    thin = _thin(mask, direction, max(MIN_LINE_WIDTH, round(LINE_WIDTH * min(h, w))))
    grown = cv2.dilate(thin, _rect(1, 2 * TILT_PX + 1, direction))  # a slightly tilted line still runs straight
    grown = cv2.morphologyEx(grown, cv2.MORPH_CLOSE, _rect(run // 3, 1, direction))  # ... and a faint one, unbroken
    runs = cv2.morphologyEx(grown, cv2.MORPH_OPEN, _rect(run, 1, direction))
    if not runs.any():  # no straight run long enough anywhere: most pictures
        return np.zeros_like(mask)
    runs = cv2.morphologyEx(runs, cv2.MORPH_CLOSE, _rect(run, 1, direction))  # bridged where a stroke crosses it
    n, labels, stats, _ = cv2.connectedComponentsWithStats(runs, connectivity=8)
    long = stats[:, cv2.CC_STAT_WIDTH if direction == ACROSS else cv2.CC_STAT_HEIGHT] >= LINE_SPAN * span
    long[0] = False  # the background
    return long[labels].astype(np.uint8) & thin if long.any() else np.zeros_like(mask)


def find_lines(ink: np.ndarray, near: np.ndarray | None = None) -> np.ndarray:
    """uint8 (H, W): the thin ink on the paper's printed lines, ACROSS and ALONG bits; with `near` (the lines found
    on the whole picture, resampled to this part of it), only lines that lie there count: where writing fills a
    part of the picture, a stroke may run as far across it as a line does."""
    if near is None and min(ink.shape) < MIN_PAGE:
        return np.zeros(ink.shape, np.uint8)
    # the faintest ink (a line's own soft edge) is left out: it would merge the lines with their surroundings
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
        if line.any():  # each direction's own level: a red margin is darker than the blue rules it crosses
            gone |= line & (ink < DARKER_THAN_LINE * np.quantile(ink[line], LINE_LEVEL))
        near.append(cv2.dilate(line.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool))
    gone |= (lines > 0) & near[0] & near[1]  # where two lines cross, their inks add up: darker than either
    return np.where(gone, np.float32(0.0), ink)


def lines_in(lines: np.ndarray, size: tuple[int, int], region: tuple[int, int, int, int], shape: tuple) -> np.ndarray:
    """The part of `lines`, found on a copy of a `size` (width, height) picture, that covers `region` (left, top,
    right, bottom) of it, resampled to `shape` (h, w)."""
    sx, sy = lines.shape[1] / size[0], lines.shape[0] / size[1]
    left, top = int(region[0] * sx), int(region[1] * sy)
    right, bottom = max(left + 1, int(np.ceil(region[2] * sx))), max(top + 1, int(np.ceil(region[3] * sy)))
    part = np.ascontiguousarray(lines[top:bottom, left:right])
    part = cv2.resize(part, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    reach = 2 * round(shape[1] / max(right - left, 1)) + 3  # a line found on the coarse copy is only roughly here
    return cv2.dilate(part, np.ones((reach, reach), np.uint8))


def keep_writing(ink: np.ndarray, reach: float) -> np.ndarray:
    """The ink with what lies apart from the writing zeroed: the most massive piece of ink, and every piece within
    `reach` times its size (or NEAR of the picture) of what is kept, chained; a dot, a smudge or a fold elsewhere
    does not count."""
    if cv2 is None:
        return ink
    mask = (ink > 0).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 2:
        return ink
    mass = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=n)
    mass[0] = 0.0
    main = int(np.argmax(mass))
    x, y, w, h = (int(v) for v in stats[main, :4])
    gap = max(reach * max(h, w), NEAR * min(ink.shape))  # a tiny piece (an eye) keeps its neighbours near
    kept = np.zeros(n, bool)
    kept[main] = True
    box = [x, y, x + w, y + h]
    grew = True
    while grew:  # chained: each piece taken in widens the box the others are measured against
        grew = False
        for k in range(1, n):
            kx, ky, kw, kh = (int(v) for v in stats[k, :4])
            near = kx <= box[2] + gap and kx + kw >= box[0] - gap and ky <= box[3] + gap and ky + kh >= box[1] - gap
            if not kept[k] and near:
                kept[k] = grew = True
                box = [min(box[0], kx), min(box[1], ky), max(box[2], kx + kw), max(box[3], ky + kh)]
    kept[0] = False
    return np.where(kept[labels], ink, np.float32(0.0))


def dilate(ink: np.ndarray, size: int) -> np.ndarray:
    """Grey dilation by a round pen `size` px wide (odd)."""
    return cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
