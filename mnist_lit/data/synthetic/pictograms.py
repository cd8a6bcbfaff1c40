"""Pictograms people doodle where a digit is expected: ticks and crosses, hearts, question marks,
spirals, arrows, stars, faces and a ring with a dot, each from a few random proportions, drawn as
polylines by mnist_lit.data.synthetic.ink.draw with a wobbling hand; (N, 1, HI, HI) binary, for
mnist_lit.data.synthetic.negatives.

Try it: python -m mnist_lit.data.synthetic.negatives outputs/negatives.png
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mnist_lit.data.synthetic.ink import draw, pack

# points along each curved stroke
CURVE_POINTS = 24
# a hand's drift, as a share of the drawing's size
WOBBLE = 0.04
# a dot's length: a short stroke that the pen widens into a blob
DOT = 0.03


def _arc(
    cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = CURVE_POINTS
) -> np.ndarray:
    """Points (n, 2) along an ellipse's arc from angle a0 to a1 (radians, y down)."""
    t = np.linspace(a0, a1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], -1)


def _dot(x: float, y: float) -> np.ndarray:
    return np.array([[x, y], [x + DOT, y + DOT]])


def check(rng: np.random.Generator) -> list[np.ndarray]:
    """A tick: a short stroke down, a long one up, sometimes inside a box."""
    foot = (rng.uniform(0.3, 0.45), 1.0)
    strokes = [np.array([(0.0, rng.uniform(0.45, 0.7)), foot, (1.0, rng.uniform(-0.1, 0.2))])]
    if rng.random() < 0.2:
        strokes.append(np.array([(-0.2, -0.2), (1.2, -0.2), (1.2, 1.2), (-0.2, 1.2), (-0.2, -0.2)]))
    return strokes


def cross(rng: np.random.Generator) -> list[np.ndarray]:
    """Two crossing strokes (an x, a +, or askew), sometimes boxed or ringed."""
    a = rng.uniform(0, math.pi)
    spread = rng.uniform(0.35, 0.65) * math.pi
    strokes = [
        np.array([(-math.cos(t), -math.sin(t)), (math.cos(t), math.sin(t))])
        for t in (a, a + spread)
    ]
    if rng.random() < 0.3:
        strokes.append(_arc(0, 0, 1.4, 1.4, 0, 2 * math.pi))
    return strokes


def heart(rng: np.random.Generator) -> list[np.ndarray]:
    """The heart curve, fuller or slimmer, in one stroke or two halves; sometimes with a mark
    inside."""
    t = np.linspace(0, 2 * math.pi, 2 * CURVE_POINTS)
    # how deep the dip between the lobes is
    depth = rng.uniform(2, 7)
    x = 16 * np.sin(t) ** 3 * rng.uniform(0.8, 1.2)
    y = -(13 * np.cos(t) - depth * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    curve = np.stack([x, y], -1) / 16
    strokes = [curve] if rng.random() < 0.6 else [curve[: CURVE_POINTS + 1], curve[CURVE_POINTS:]]
    if rng.random() < 0.2:
        strokes.append(_arc(0, 0, 0.3, 0.3, 0, 2 * math.pi))
    return strokes


def question(rng: np.random.Generator) -> list[np.ndarray]:
    """A hook over a stem, then a dot below it clear of the stroke."""
    r = rng.uniform(0.35, 0.5)
    hook = _arc(
        0, -0.5, r, r * rng.uniform(0.8, 1.2), math.pi * rng.uniform(0.8, 1.1), math.pi * 2.5
    )
    stem = np.array([hook[-1], (rng.uniform(-0.1, 0.1), rng.uniform(0.3, 0.5))])
    return [np.concatenate([hook, stem]), _dot(stem[-1, 0], rng.uniform(0.75, 0.95))]


def spiral(rng: np.random.Generator) -> list[np.ndarray]:
    """An Archimedean spiral of 1.5-3.5 turns, either way round."""
    turns = rng.uniform(1.5, 3.5)
    t = np.linspace(0, turns * 2 * math.pi, int(CURVE_POINTS * turns))
    r = rng.uniform(0, 0.1) + t / t[-1]
    side = rng.choice((-1, 1))
    return [np.stack([r * np.cos(side * t), r * np.sin(side * t) * rng.uniform(0.7, 1.1)], -1)]


def arrow(rng: np.random.Generator) -> list[np.ndarray]:
    """A shaft, straight or bowed, with an open or closed head."""
    bow = rng.uniform(-0.3, 0.3)
    s = np.linspace(0, 1, 8)
    shaft = np.stack([s * 2 - 1, bow * np.sin(s * math.pi)], -1)
    back, wide = rng.uniform(0.3, 0.5), rng.uniform(0.2, 0.4)
    tip = shaft[-1]
    head = np.array([tip + (-back, wide), tip, tip + (-back, -wide)])
    if rng.random() < 0.3:
        head = np.concatenate([head, head[:1]])
    return [shaft, head]


def star(rng: np.random.Generator) -> list[np.ndarray]:
    """A five-pointed star, drawn as a pentagram in one stroke or as its outline."""
    a0 = rng.uniform(0, 2 * math.pi)
    if rng.random() < 0.5:
        order = np.arange(6) * 2 * 2 * math.pi / 5 + a0
        return [np.stack([np.cos(order), np.sin(order)], -1)]
    inner = rng.uniform(0.35, 0.55)
    angle = np.arange(11) * math.pi / 5 + a0
    radius = np.where(np.arange(11) % 2 == 0, 1.0, inner)
    return [np.stack([radius * np.cos(angle), radius * np.sin(angle)], -1)]


def face(rng: np.random.Generator) -> list[np.ndarray]:
    """A ring (or none) with two eyes and a smiling, straight or sad mouth."""
    strokes = [_arc(0, 0, 1, rng.uniform(0.85, 1.15), 0, 2 * math.pi)] if rng.random() < 0.8 else []
    eye_x, eye_y = rng.uniform(0.25, 0.45), rng.uniform(-0.5, -0.2)
    for x in (-eye_x, eye_x):
        strokes.append(
            _dot(x, eye_y) if rng.random() < 0.7 else _arc(x, eye_y, 0.1, 0.1, 0, 2 * math.pi, 10)
        )
    # > 0 smiles, < 0 frowns
    mood = rng.uniform(-0.3, 0.35)
    s = np.linspace(-1, 1, 10)
    strokes.append(np.stack([s * rng.uniform(0.3, 0.55), 0.4 + mood * (1 - s**2)], -1))
    return strokes


def target(rng: np.random.Generator) -> list[np.ndarray]:
    """A ring with one dot inside it, near its middle or off to a side; sometimes a second ring."""
    strokes = [_arc(0, 0, 1, rng.uniform(0.8, 1.2), 0, 2 * math.pi)]
    strokes.append(_dot(rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4)))
    if rng.random() < 0.3:
        strokes.append(_arc(0, 0, 0.6, 0.6, 0, 2 * math.pi))
    return strokes


KINDS = (check, cross, heart, question, spiral, arrow, star, face, target)


def generate_pictograms(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """n pictograms of every kind in turn, as binary ink (n, 1, HI, HI) on `device`."""
    rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=generator)))
    drawings = [KINDS[i % len(KINDS)](rng) for i in range(n)]
    points, pen = pack(drawings)
    # turned no more than half a right angle: a question mark on its side is a doodle of another
    # kind
    return draw(points, pen, generator, device, turn=0.5, shear=0.3, wobble=WOBBLE)
