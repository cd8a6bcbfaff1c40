"""Photos of paper: flatten the light and keep the writing. OpenCV (the `photos`
extra) does the morphology; without it, pictures are read with the smooth paper fit of
mnist_lit.reading.surface alone, and paper lines (mnist_lit.reading.lines) stay.

Try it: pytest tests/reading/test_page.py

Paper under a lamp, a window or a phone's shadow is never evenly lit, but it is smooth at the scale
of a stroke or brighter than the ink at least: a greyscale closing (the brightest value nearby, then
the darkest of those) with a window wider than any stroke fills the strokes in and keeps everything
broader, a shadow's edge included. Ink is how much darker a pixel is than the paper around it, as a
ratio, so that ink in a shadow counts as much as ink in the light, and a shadow's edge, which the
closing keeps, is no ink at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

try:
    import cv2
except ImportError:
    # the `photos` extra is not installed
    cv2 = None
else:
    # one picture per process, one process per core: threads would fight them for cores
    cv2.setNumThreads(1)

# the windows the paper may be estimated in, as shares of the shorter side
WINDOWS = (0.06, 0.12, 0.25, 0.5)
# a window finds all the strokes when the next wider one finds no more than this much more ink
PLATEAU = 1.25
# the whole picture's paper level is considered when it finds this many times more ink ...
GLOBAL_GAIN = 2.0
# ... with edges as steep as a stroke's: this share of the contrast per px; a shadow's are softer
SHARP_EDGE = 0.25
# ink this share of the longer side thick (its widest inscribed disc) ...
SOLID_SHARE = 0.1
# ... and this share of its own length is a shadow or a fold, never a stroke
SOLID_RATIO = 0.4
# ink within this share of the picture's shorter side of the writing is part of it
NEAR = 0.15
# the paper's level over the whole picture: its 8th brightest pixel, robust to a hot pixel or two
PEAK_RANK = 8
# px
MIN_WINDOW = 3
# longer side of the copy that the polarity and the paper's window are judged on
SMALL_SIZE = 80
# the paper's spread is measured on about this many samples a side
FLOOR_GRID = 32
# ink within this many robust sigmas of the paper's own spread is grain, noise or JPEG
NOISE_SIGMAS = 4.0


def available() -> bool:
    """Whether OpenCV is installed, so that pages are flattened and their lines taken out."""
    return cv2 is not None


def _floor(values: np.ndarray) -> float:
    """The level below which `values` (H, W) are the paper's own spread: median plus NOISE_SIGMAS
    robust sigmas, on a grid of about FLOOR_GRID x FLOOR_GRID samples."""
    sample = values[
        :: max(1, values.shape[0] // FLOOR_GRID), :: max(1, values.shape[1] // FLOOR_GRID)
    ].ravel()
    middle = sample.size // 2
    centre = float(np.partition(sample, middle)[middle])
    return centre + NOISE_SIGMAS * 1.4826 * float(
        np.partition(np.abs(sample - centre), middle)[middle]
    )


def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean mask: labels (H, W) int32, 0 for background and 1..n in
    raster order of their first pixel, and n."""
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
    return np.clip(
        cv2.cvtColor(reduced(rgb, SMALL_SIZE), cv2.COLOR_RGB2GRAY) * 255.0, 0, 255
    ).astype(np.uint8)


def dark_ink(luma: np.ndarray) -> bool:
    """Whether the ink of a small grey copy (uint8) is darker than its paper (pen on paper) rather
    than lighter (chalk, MNIST itself): against the local median, the strongest deviations go one
    way. The median follows a shadow's edge, and the deviations either side of it cancel; strokes,
    however few, are all on one side."""
    side = max(3, round(WINDOWS[-1] * min(luma.shape))) | 1
    diff = luma.astype(np.float32) - cv2.medianBlur(luma, side)
    floor = _floor(np.abs(diff))
    darker, lighter = (np.maximum(v - floor, 0.0) for v in (-diff, diff))
    return float(np.einsum("ij,ij", darker, darker)) >= float(np.einsum("ij,ij", lighter, lighter))


def paper_scale(luma: np.ndarray, dark: bool) -> float | None:
    """The window, as a share of the shorter side, that the paper is estimated in, judged on a small
    grey copy: the narrowest beyond which a wider one finds little more ink (a top-hat's total), so
    that the paper follows shadows as closely as the strokes' width allows. None when the whole
    picture's paper level finds far more ink than that, with edges as steep as a stroke's: strokes
    as broad as the picture itself (a marker on a small canvas), not a shadow, whose edge is
    soft."""
    op = cv2.MORPH_BLACKHAT if dark else cv2.MORPH_TOPHAT
    # the shares as the small copy has them: a few px wide at least, so that some windows come out
    # the same
    shares = sorted({_side(luma, share) / min(luma.shape) for share in WINDOWS})
    hats = [
        cv2.morphologyEx(luma, op, _window(luma, share), borderType=cv2.BORDER_REFLECT).astype(
            np.float32
        )
        for share in shares
    ]
    grey = luma.astype(np.float32)
    level = float(
        np.partition(grey.ravel(), -PEAK_RANK)[-PEAK_RANK]
        if dark
        else np.partition(grey.ravel(), PEAK_RANK)[PEAK_RANK]
    )
    # against the whole picture's paper
    hats.append(np.maximum(level - grey if dark else grey - level, 0))
    energy = [float(np.maximum(hat - _floor(hat), 0).sum()) for hat in hats]
    chosen = next(
        (k for k in range(len(shares) - 1) if energy[k + 1] <= PLATEAU * energy[k]), len(shares) - 1
    )
    # a solid piece means the window took in a shadow: the paper is followed closer. Only on light
    # paper: a dark
    # ground shows no shadow to speak of, and its thick strokes may fill a small picture
    while dark and chosen > 0 and _solid(hats[chosen]):
        chosen -= 1
    whole = hats[-1]
    if energy[-1] <= GLOBAL_GAIN * energy[chosen] or (dark and _solid(whole)):
        return shares[chosen]
    cut = max(otsu_level(whole), _floor(whole))
    extra = (whole > cut) & ~cv2.dilate(
        (hats[chosen] > cut).astype(np.uint8), np.ones((3, 3), np.uint8)
    ).astype(bool)
    edge = extra & ~cv2.erode(extra.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if not edge.any():
        return shares[chosen]
    slope = (
        np.hypot(
            cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
        )
        / 8.0
    )
    sharpness = float(np.median(slope[edge])) / max(float(np.median(whole[extra])), 1.0)
    return None if sharpness >= SHARP_EDGE else shares[chosen]


def _solid(hat: np.ndarray) -> bool:
    """Whether the strong ink of a small copy's top-hat (H, W) holds a solid piece: one whose widest
    inscribed disc is SOLID_SHARE of the picture's longer side and SOLID_RATIO of its own length.
    Strokes are long for their width; a shadow, or the dark half of a page, is not."""
    mask = (hat > max(otsu_level(hat), _floor(hat))).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return False
    depth = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    widest = np.zeros(n, np.float32)
    np.maximum.at(widest, labels.ravel(), depth.ravel())
    width = 2.0 * widest[1:]
    length = np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT])
    return bool(np.any((width >= SOLID_SHARE * max(hat.shape)) & (width >= SOLID_RATIO * length)))


def _side(picture: np.ndarray, share: float) -> int:
    """The window's side in px for a picture: `share` of its shorter side, odd, at least
    MIN_WINDOW."""
    return max(MIN_WINDOW, round(share * min(picture.shape[:2]))) | 1


def _window(picture: np.ndarray, share: float) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_RECT, (_side(picture, share),) * 2)


def _contrast(rgb: np.ndarray, window: np.ndarray, dark: bool) -> np.ndarray:
    """(H, W) float32: how far each pixel stands out from the paper around it, less the paper's own
    spread."""
    if dark:
        paper = cv2.morphologyEx(rgb, cv2.MORPH_CLOSE, window, borderType=cv2.BORDER_REFLECT)
        # a ratio: the same in a shadow as in the light
        contrast = 1.0 - rgb / np.maximum(paper, 1e-3)
    else:
        # light ink on a dark ground: its excess over the ground; a dark ground shows no shadow to
        # speak of
        contrast = rgb - cv2.morphologyEx(
            rgb, cv2.MORPH_OPEN, window, borderType=cv2.BORDER_REFLECT
        )
    # every channel counts: black, blue and red pens, and grey pencil, all take light away from some
    # of them
    ink = np.sqrt(np.einsum("ijk,ijk->ij", contrast, contrast) * np.float32(1.0 / 3.0))
    return np.maximum(ink - np.float32(_floor(ink)), np.float32(0.0))


@dataclass(frozen=True)
class PaperModel:
    """How a page is read: whether its ink is darker than its paper, and the window its paper is
    estimated in, as a share of the page's shorter side (None: the paper is fitted over the whole
    picture instead)."""

    dark: bool
    share: float | None


def estimate_paper(rgb: np.ndarray) -> PaperModel:
    """The PaperModel of a whole page, (H, W, 3) RGB in [0, 1], judged on a small grey copy of
    it."""
    luma = _small_luma(rgb)
    dark = dark_ink(luma)
    return PaperModel(dark, paper_scale(luma, dark))


def flat_ink(
    rgb: np.ndarray, paper: PaperModel | None = None, page_side: float | None = None
) -> np.ndarray | None:
    """(H, W) float32 ink of an (H, W, 3) RGB picture in [0, 1], dark on light or light on dark: 0
    on paper however it is lit, growing with the ink's contrast against the paper around it. `paper`
    is the whole page's, whose shorter side is `page_side` px at this copy's scale: a part of a page
    is read at the page's own scale, since the part alone shows too little of the paper to judge it
    by. None when the strokes are too broad for any window: then the paper is best fitted over the
    whole picture."""
    paper = paper or estimate_paper(rgb)
    if paper.share is None:
        return None
    side = max(MIN_WINDOW, round(paper.share * (page_side or min(rgb.shape[:2])))) | 1
    return _contrast(rgb, cv2.getStructuringElement(cv2.MORPH_RECT, (side, side)), paper.dark)


def otsu_level(ink: np.ndarray) -> float:
    """Otsu's threshold of the ink, by OpenCV on 8 bits of it."""
    top = float(ink.max())
    if top <= 0:
        return 0.0
    level, _ = cv2.threshold(
        np.clip(ink * (255.0 / top), 0, 255).astype(np.uint8), 0, 255, cv2.THRESH_OTSU
    )
    return float(level) * top / 255.0


def part_of(
    found: np.ndarray, size: tuple[int, int], region: tuple[int, int, int, int], shape: tuple
) -> np.ndarray:
    """The part of `found` (uint8, a map made on a copy of a `size` (width, height) picture) that
    covers `region` (left, top, right, bottom) of it, resampled to `shape` (h, w) and grown by the
    copy's coarseness: what was found on the coarse copy is only roughly here."""
    sx, sy = found.shape[1] / size[0], found.shape[0] / size[1]
    left, top = int(region[0] * sx), int(region[1] * sy)
    right, bottom = (
        max(left + 1, int(np.ceil(region[2] * sx))),
        max(top + 1, int(np.ceil(region[3] * sy))),
    )
    part = np.ascontiguousarray(found[top:bottom, left:right])
    part = cv2.resize(part, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    reach = 2 * round(shape[1] / max(right - left, 1)) + 3
    return cv2.dilate(part, np.ones((reach, reach), np.uint8))


def keep_writing(ink: np.ndarray, reach: float) -> np.ndarray:
    """The ink with what lies apart from the writing zeroed: the most massive piece of ink, and
    every piece within `reach` times its size (or NEAR of the picture) of what is kept, chained; a
    dot, a smudge or a fold elsewhere does not count."""
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
    # a tiny piece (an eye) keeps its neighbours near
    gap = max(reach * max(h, w), NEAR * min(ink.shape))
    kept = np.zeros(n, bool)
    kept[main] = True
    box = [x, y, x + w, y + h]
    grew = True
    # chained: each piece taken in widens the box the others are measured against
    while grew:
        grew = False
        for k in range(1, n):
            kx, ky, kw, kh = (int(v) for v in stats[k, :4])
            near = (
                kx <= box[2] + gap
                and kx + kw >= box[0] - gap
                and ky <= box[3] + gap
                and ky + kh >= box[1] - gap
            )
            if not kept[k] and near:
                kept[k] = grew = True
                box = [min(box[0], kx), min(box[1], ky), max(box[2], kx + kw), max(box[3], ky + kh)]
    kept[0] = False
    return np.where(kept[labels], ink, np.float32(0.0))


def dilate(ink: np.ndarray, size: int) -> np.ndarray:
    """Grey dilation by a round pen `size` px wide (odd)."""
    return cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
