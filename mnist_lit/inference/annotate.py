"""Annotated copies of predicted pictures: the picture, the ink found in it (the page's light
flattened, its printed lines taken out) and the 28x28 input the model saw, side by side, with the
answer.

Try it: python predict.py image=path/to/digits/ annotate=outputs/annotated
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from mnist_lit.answer import NOT_A_DIGIT, UNSURE, Answer
from mnist_lit.inference.predictor import Prediction
from mnist_lit.reading.preprocess import NoInkError, found_ink

# px: each of the three panels of the annotated picture
PANEL = 224
# px: the strip under the panels
CAPTION = 28
# by verdict
BOX_COLOURS = {"digit": (30, 130, 60), UNSURE: (200, 130, 20), NOT_A_DIGIT: (190, 40, 40)}


def caption_of(answer: Answer) -> str:
    """The verdict in words: "7 (99.1%)", "unsure: 4 (55.0%) or 9", "not a digit (97.0%)"."""
    shown = f"({100 * answer.confidence:.1f}%)"
    if answer.verdict == NOT_A_DIGIT:
        return f"not a digit {shown}"
    if answer.verdict == UNSURE:
        return f"unsure: {answer.digit} {shown} or {answer.alternative}"
    return f"{answer.digit} {shown}"


def number_caption(pred: Prediction) -> str:
    """A number's reading: "2026 (93.0%)", "unsure: 2026 (41.0%)", or "no digits"."""
    number = "".join(str(a.digit) for a, _ in pred.digits if a.digit is not None)
    if not number:
        return "no digits"
    prefix = "unsure: " if pred.answer.verdict == UNSURE else ""
    return f"{prefix}{number} ({100 * pred.answer.confidence:.1f}%)"


def draw_boxes(board: Image.Image, pred: Prediction, scale: float) -> None:
    """Each digit's box, in the picture as shown (scaled by `scale`), with its reading above it."""
    draw = ImageDraw.Draw(board)
    for answer, box in pred.digits:
        if box is None:
            continue
        x0, y0, x1, y1 = (round(v * scale) for v in box)
        colour = BOX_COLOURS.get(answer.verdict, BOX_COLOURS[NOT_A_DIGIT])
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=2)
        draw.text(
            (x0 + 2, max(0, y0 - 12)),
            "?" if answer.digit is None else str(answer.digit),
            fill=colour,
        )


def ink_panel(img: Image.Image) -> np.ndarray:
    """The ink the reader found in the picture, white on black, (H, W) uint8; black where it found
    none."""
    try:
        return (found_ink(img) * 255).astype(np.uint8)
    except NoInkError:
        return np.zeros((img.height, img.width), np.uint8)


def annotate(pred: Prediction, out_dir: str | os.PathLike) -> Path:
    """Write `<stem>.pred.png` into out_dir (never over an existing file) and return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with Image.open(pred.image) as img:
        shown = ImageOps.exif_transpose(img).convert("RGBA")
    # a checkerboard behind transparent pictures, so that ink on nothing stays visible
    canvas = Image.new("RGB", (3 * PANEL, PANEL + CAPTION), "white")
    picture = ImageOps.contain(shown, (PANEL, PANEL))
    board = Image.new("RGB", picture.size, (200, 200, 200))
    draw = ImageDraw.Draw(board)
    for y in range(0, picture.height, 16):
        for x in range((y // 16) % 2 * 16, picture.width, 32):
            draw.rectangle((x, y, x + 15, y + 15), fill=(235, 235, 235))
    board.paste(picture, (0, 0), picture)
    draw_boxes(board, pred, picture.width / shown.width)
    canvas.paste(board, ((PANEL - picture.width) // 2, (PANEL - picture.height) // 2))
    # on black, like the input
    ink = ImageOps.pad(Image.fromarray(ink_panel(shown)), (PANEL, PANEL), color=0)
    canvas.paste(ink.convert("RGB"), (PANEL, 0))
    model_input = Image.fromarray(pred.model_input())
    model_input = model_input.resize(
        (PANEL, max(1, PANEL * 28 // model_input.width)), Image.Resampling.NEAREST
    )
    canvas.paste(model_input.convert("RGB"), (2 * PANEL, 0))
    caption = caption_of(pred.answer) if len(pred.digits) <= 1 else number_caption(pred)
    ImageDraw.Draw(canvas).text(
        (8, PANEL + 8), f"{caption}   ink found   model input: 28x28", fill="black"
    )
    target = out_dir / f"{Path(pred.image).stem}.pred.png"
    n = 1
    # another picture of the same name, or an earlier call: keep both
    while target.exists():
        target = out_dir / f"{Path(pred.image).stem}.pred-{n}.png"
        n += 1
    canvas.save(target)
    return target
