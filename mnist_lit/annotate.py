"""Annotated copies of predicted pictures: the picture beside the 28x28 input the model saw, with its answer.

Try it: python predict.py image=path/to/digits/ annotate=outputs/annotated
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from mnist_lit.answer import NOT_A_DIGIT, UNSURE, Answer
from mnist_lit.predictor import Prediction

PANEL = 224  # px: each half of the annotated picture
CAPTION = 28  # px: the strip under the panels


def caption_of(answer: Answer) -> str:
    """The verdict in words: "7 (99.1%)", "unsure: 4 (55.0%) or 9", "not a digit (97.0%)"."""
    shown = f"({100 * answer.confidence:.1f}%)"
    if answer.verdict == NOT_A_DIGIT:
        return f"not a digit {shown}"
    if answer.verdict == UNSURE:
        return f"unsure: {answer.digit} {shown} or {answer.alternative}"
    return f"{answer.digit} {shown}"


def annotate(pred: Prediction, out_dir: str | os.PathLike) -> Path:
    """Write `<stem>.pred.png` into out_dir (never over an existing file) and return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with Image.open(pred.image) as img:
        shown = ImageOps.exif_transpose(img).convert("RGBA")
    # a checkerboard behind transparent pictures, so that ink on nothing stays visible
    canvas = Image.new("RGB", (2 * PANEL, PANEL + CAPTION), "white")
    picture = ImageOps.contain(shown, (PANEL, PANEL))
    board = Image.new("RGB", picture.size, (200, 200, 200))
    draw = ImageDraw.Draw(board)
    for y in range(0, picture.height, 16):
        for x in range((y // 16) % 2 * 16, picture.width, 32):
            draw.rectangle((x, y, x + 15, y + 15), fill=(235, 235, 235))
    board.paste(picture, (0, 0), picture)
    canvas.paste(board, ((PANEL - picture.width) // 2, (PANEL - picture.height) // 2))
    model_input = Image.fromarray(pred.pixels).resize((PANEL, PANEL), Image.Resampling.NEAREST)
    canvas.paste(model_input.convert("RGB"), (PANEL, 0))
    caption = caption_of(pred.answer)
    ImageDraw.Draw(canvas).text((8, PANEL + 8), f"{caption}   model input: 28x28", fill="black")
    target = out_dir / f"{Path(pred.image).stem}.pred.png"
    n = 1
    while target.exists():  # another picture of the same name, or an earlier call: keep both
        target = out_dir / f"{Path(pred.image).stem}.pred-{n}.png"
        n += 1
    canvas.save(target)
    return target
