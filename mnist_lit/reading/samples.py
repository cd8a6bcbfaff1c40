"""Sample pictures for the tests and the benches: a pen-drawn seven in any format Pillow writes, a
PNG that declares any size, and MNIST digits rendered the way users send them (big canvases,
off-centre, thick or thin strokes, either polarity, transparent PNGs, coloured ink on tinted paper,
uneven light, JPEG).

Try it: DATA_DIR=../shared/data python bench/user_digits.py --out outputs/user_digits --count 100
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# format name for Pillow's save -> keyword arguments
FORMATS = {
    "PNG": {},
    "JPEG": {"quality": 90},
    "GIF": {},
    "WEBP": {"quality": 90},
    "TIFF": {},
    "BMP": {},
    "ICO": {"sizes": [(96, 96)]},
    "AVIF": {"quality": 90},
    "HEIF": {"quality": 90},
}
# the formats the fuzz test damages
FUZZED = ("PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP", "HEIF")


def seven(size: tuple[int, int] = (96, 96)) -> Image.Image:
    """A dark 7 on light paper, drawn with a pen: asymmetric, so that a rotation shows."""
    img = Image.new("RGB", size, (236, 234, 228))
    w, h = size
    ImageDraw.Draw(img).line(
        [(0.25 * w, 0.2 * h), (0.75 * w, 0.2 * h), (0.42 * w, 0.85 * h)],
        fill=(30, 30, 35),
        width=max(3, w // 12),
    )
    return img


def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    """The picture saved in `fmt` (a Pillow format name), with FORMATS' settings unless kwargs
    replace them."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **{**FORMATS.get(fmt, {}), **kwargs})
    return buf.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height: a decompression bomb's shape, a few hundred
    bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    # 8-bit grey
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    # a few rows only: a real bomb compresses the rest as well
    rows = zlib.compress(b"\0" * (width + 1) * 4)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


# paper (dark on light) is the common case
STYLES = ("paper", "paper", "paper", "dark", "transparent", "colour")


def render(digit: np.ndarray, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """One user-style picture of a 28x28 uint8 MNIST digit; returns it and the file extension to
    save it with."""
    canvas_w, canvas_h = (int(v) for v in rng.integers(96, 640, size=2))
    # the 28x28 field's side on the canvas
    size = int(rng.uniform(0.25, 0.9) * min(canvas_w, canvas_h))
    glyph = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
    stroke = rng.choice(["thin", "normal", "thick"], p=[0.25, 0.5, 0.25])
    k = max(3, (size // 40) * 2 + 1)
    if stroke == "thick":
        glyph = glyph.filter(ImageFilter.MaxFilter(k))
    elif stroke == "thin":
        glyph = glyph.filter(ImageFilter.MinFilter(k))
    alpha = np.zeros((canvas_h, canvas_w), np.float32)
    top, left = int(rng.integers(0, canvas_h - size + 1)), int(rng.integers(0, canvas_w - size + 1))
    alpha[top : top + size, left : left + size] = np.asarray(glyph, np.float32) / 255.0
    # a thin-stroke erosion wiped it out; fall back to normal strokes
    if alpha.max() < 0.3:
        alpha[top : top + size, left : left + size] = (
            np.asarray(
                Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), np.float32
            )
            / 255.0
        )

    style = STYLES[int(rng.integers(len(STYLES)))]
    if style == "transparent":
        ink = rng.uniform(0, 0.6, size=3) if rng.random() < 0.7 else rng.uniform(0.6, 1.0, size=3)
        rgba = np.dstack([np.broadcast_to(ink, alpha.shape + (3,)), alpha])
        return Image.fromarray((rgba * 255).astype(np.uint8), "RGBA"), ".png"
    # chalk on a blackboard, light pen on a dark app theme
    if style == "dark":
        paper, ink = rng.uniform(0.0, 0.3, 3), rng.uniform(0.75, 1.0, 3)
    elif style == "colour":
        paper, ink = rng.uniform(0.7, 1.0, 3), rng.uniform(0.0, 0.6, 3)
    else:
        paper, ink = np.full(3, rng.uniform(0.75, 1.0)), np.full(3, rng.uniform(0.0, 0.35))
    # uneven light: a linear gradient across the sheet, plus paper grain
    yy, xx = np.mgrid[0:canvas_h, 0:canvas_w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / canvas_w + np.sin(angle) * yy / canvas_h) * rng.uniform(0.0, 0.3)
    light = (1.0 - ramp + ramp.mean())[..., None]
    grain = rng.normal(0, rng.uniform(0.0, 0.04), size=(canvas_h, canvas_w, 1))
    rgb = (paper * (1 - alpha[..., None]) + ink * alpha[..., None]) * light + grain
    img = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")
    return img, (".jpg" if rng.random() < 0.6 else ".png")


def write_pictures(images: np.ndarray, labels: list[int], out: Path, seed: int = 0) -> list[Path]:
    """Render each (28, 28) uint8 digit as a user-style picture named <index>_<label>.<ext> in
    `out`."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (digit, label) in enumerate(zip(images, labels)):
        img, ext = render(digit, rng)
        path = out / f"{i:05d}_{int(label)}{ext}"
        if ext == ".jpg":
            img.save(path, quality=int(rng.integers(60, 96)))
        else:
            img.save(path)
        paths.append(path)
    return paths
