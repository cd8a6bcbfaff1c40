"""The paper as one smooth surface: a quadratic fitted over the whole picture to the pixels that are
not ink. It is how pictures are read without OpenCV, and how they are read with it when their
strokes are too broad for any local window (mnist_lit.reading.page): a marker's digit filling a
small canvas.

Try it: pytest tests/reading/test_preprocess.py

The small products below are einsums, not `@`: `@` goes to OpenBLAS, whose thread pool wakes up for
matrices of this size; with one preprocessing process per core, the threads would fight the
processes for the cores.
"""

from __future__ import annotations

import numpy as np

# refits of the paper surface, each on the pixels nearest the last fit
BG_FIT_ROUNDS = 2
# share of pixels taken as paper for the fit; digits cover far less of a picture
PAPER_SHARE = 0.6
# the surface is fitted to about BG_FIT_GRID x BG_FIT_GRID samples
BG_FIT_GRID = 40
# ITU-R 601 weights of R, G, B in brightness
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
# Tikhonov term of the surface fit
RIDGE_6X6 = 1e-4 * np.eye(6, dtype=np.float32)
# deviations within this many robust sigmas of the paper are grain or JPEG noise
NOISE_SIGMAS = 4.0
# ink standing out less than this (0-1 scale) above the noise floor is no stroke
MIN_CONTRAST = 0.06


def quantile(values: np.ndarray, q: float) -> float:
    """The q-quantile by partial sort (nearest rank): several times cheaper than np.quantile on
    small arrays."""
    k = min(values.size - 1, int(q * values.size))
    return float(np.partition(values.ravel(), k)[k])


def _axis(n: int) -> np.ndarray:
    """n coordinates evenly over [-1, 1] (np.linspace's, at a fraction of its call overhead)."""
    return np.arange(n, dtype=np.float32) * np.float32(2.0 / max(n - 1, 1)) - np.float32(
        1.0 if n > 1 else 0.0
    )


def background(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """Paper colour under uneven light, as a smooth quadratic surface per channel (H, W, 3) fitted
    to the pixels that are not ink, and the noise floor: how far paper pixels stray from it (grain,
    JPEG)."""
    h, w, _ = rgb.shape
    # the surface is smooth: a coarse grid of samples fits it
    step = max(1, max(h, w) // BG_FIT_GRID)
    ys, xs = _axis(h), _axis(w)
    # the sample rows and columns, row-major like `samples`
    grid_y, grid_x = ys[::step], xs[::step]
    y, x = np.repeat(grid_y, len(grid_x)), np.tile(grid_x, len(grid_y))
    samples = rgb[::step, ::step].reshape(-1, 3)
    # (n, 9): the quadratic terms 1, x, y, x^2, xy, y^2, then the sample's colour, so that one
    # selection and one
    # product give both sides of the normal equations
    rows = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y, *samples.T], axis=1)
    terms = rows[:, :6]
    middle = len(samples) // 2
    # the median paper colour: where the fit starts
    fitted = np.partition(samples, middle, axis=0)[middle]
    for _ in range(BG_FIT_ROUNDS):
        # paper is most of the picture: keep the samples nearest the current model, refit, repeat
        error = samples - fitted
        residual = np.einsum("ij,ij->i", error, error)
        a = rows[residual <= quantile(residual, PAPER_SHARE)]
        # (6, 9): A'A beside A'b
        normal = np.einsum("ni,nj->ij", a[:, :6], a)
        # least squares by the 6x6 normal equations; the ridge keeps a degenerate sample set
        # solvable
        # (6, 3)
        coef = np.linalg.solve(normal[:, :6] + RIDGE_6X6, normal[:, 6:])
        fitted = np.einsum("nk,kc->nc", terms, coef)
    error = samples - fitted
    residual = np.sqrt(np.einsum("ij,ij->i", error, error) * (1.0 / 3.0))
    on_paper = residual[residual <= quantile(residual, PAPER_SHARE)]
    # a robust spread: the median absolute deviation, scaled to a Gaussian sigma
    centre = quantile(on_paper, 0.5)
    floor = centre + NOISE_SIGMAS * 1.4826 * quantile(np.abs(on_paper - centre), 0.5)
    # the surface at every pixel as one (H, 3) x (3, W, 3) product, grouping the terms by powers of
    # y:
    # 1 * (c0 + c1 x + c3 x^2) + y * (c2 + c4 x) + y^2 * c5
    c = coef.astype(np.float32)
    # (3, W, 3)
    by_x = np.stack(
        [
            c[0] + xs[:, None] * c[1] + (xs * xs)[:, None] * c[3],
            c[2] + xs[:, None] * c[4],
            np.broadcast_to(c[5], (w, 3)),
        ]
    )
    # (H, 3)
    by_y = np.stack([np.ones_like(ys), ys, ys * ys], axis=1)
    return np.einsum("hk,kwc->hwc", by_y, by_x), float(floor)


def polarity(diff: np.ndarray, floor: float) -> float:
    """-1.0 for ink darker than its paper, 1.0 for lighter (chalk, MNIST itself), from the
    deviations (H, W, 3) from the paper: the strongest go one way. Noise is symmetric and cancels;
    strokes, however few, are one-sided."""
    luma = np.einsum("ijk,k->ij", diff, LUMA)
    darker, lighter = (np.maximum(v.ravel() - floor, 0.0) for v in (-luma, luma))
    return -1.0 if np.einsum("i,i", darker, darker) > np.einsum("i,i", lighter, lighter) else 1.0


def smooth_ink(rgb: np.ndarray) -> np.ndarray:
    """(H, W) float32 ink of an (H, W, 3) RGB picture in [0, 1] against the smooth paper surface:
    its colour distance from it, less the noise floor; glare on dark ink is no stroke."""
    paper, floor = background(rgb)
    diff = rgb - paper
    luma = np.einsum("ijk,k->ij", diff, LUMA)
    # colour distance catches red ink on pink paper too; einsum: one pass, no (H, W, 3) temporary
    distance = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff) * (1.0 / 3.0))
    ink = np.maximum(distance - floor, 0.0, dtype=np.float32)
    ink[polarity(diff, floor) * luma <= -MIN_CONTRAST] = 0.0
    return ink
