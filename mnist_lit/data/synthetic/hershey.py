"""Letters, symbols, pictograms and digits from the Hershey stroke fonts (the Hershey-Fonts package
on PyPI): each glyph stored as the pen's path, so it is drawn here with any pen, slant and wobble,
the way a hand draws it rather than the way a printer fills it. Their non-digits widen the negatives
far past one font family (Greek, Cyrillic, Japanese kana and kanji, astrological, mathematical,
meteorological, musical and map symbols); their digits, in sans, serif, italic and script faces,
train as digits, so that a typed or restroked digit stays one.

Try it: python -m mnist_lit.data.synthetic.hershey outputs/strokes.png
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

from mnist_lit.data.synthetic.ink import draw, pack

# per font: the keys whose glyphs are not digits and are not drawn like one (no 0 O o, 1 l I |, 2 Z
# z, 3 ε з,
# 5 S s, 6 b б, 7 T Γ, 8 B ∞, 9 g q, nor the Greek, Cyrillic or kana that look like them)
LATIN = "ACEFHJKLMNPRUVWXYacdefhkmnprtuvwxy"
# joined-up capitals and f, r, t drift towards 2, 1 and 7
SCRIPT = "ACEFHKMNPRUVWXYacdehkmnpuvwxy"
NEGATIVE_KEYS = {
    "futural": LATIN + "#%&*+<>?@",
    "rowmans": LATIN + "#&?@",
    "timesr": LATIN,
    "timesi": LATIN,
    "gothiceng": LATIN,
    "scripts": SCRIPT + "&?",
    "cursive": SCRIPT + "&?",
    "greek": "ACDEFHJKLMNPRSUWXYacfghklmnpuwy#%&*+<>?@",
    "cyrillic": "ADEFHIKLMNPQRSUWXY[^adefhiklmnpqrsuwxy",
    "symbolic": "89;<=>ADEFGIJKLMNOPQRSTUVWXYZ[]^`abcdefghjklmnopuxyz{}",
    "markers": "BCDEFGHIJKLMNOP",
    "astrology": "!#$%&'+-./:;<=>?@[]_`{|}~",
    "japanese": "#$%&'()*+,-./0457789:;<=>?@ADEFGHJKMNPSTUVWXZ[\\]^_`abcdfghlnoqrtuvwxyz{|}",
    "mathlow": "!\"#$%&'*+.:;<=>?@ACEFHKMNPUVWXY^bcdefghijklnowxz|~",
    "meteorology": "\"#$%&'()*+.:;?@ACEFHJKLMNPRUVWXY_acdefhkmnprtuvwxy|",
    "music": "&'(+/;<>@^",
}
# the faces whose digits are drawn as digits: sans, serif, italic and script
DIGIT_FONTS = (
    "futural",
    "futuram",
    "rowmans",
    "rowmand",
    "timesr",
    "timesi",
    "timesib",
    "scripts",
    "scriptc",
    "cursive",
    "cyrillic",
    "astrology",
    "music",
)
# radians either way (25 degrees), as the font glyphs in mnist_lit.data.synthetic.negatives are
# turned
TURN = 0.44
# a digit turned much further reads as another one (6 and 9)
DIGIT_TURN = 0.26
# an italic's slant, either way
SHEAR = 0.35
# a hand's drift, as a share of the glyph's size
WOBBLE = 0.03


@cache
def _font(name: str) -> object:
    """The Hershey font `name`, loaded once."""
    try:
        from HersheyFonts import HersheyFonts
    except ImportError as error:
        raise RuntimeError(
            "the Hershey stroke fonts are missing: pip install 'mnist-lit[strokes]' (make install "
            "includes them)"
        ) from error
    font = HersheyFonts()
    font.load_default_font(name)
    return font


def glyph_strokes(font: str, key: str) -> list[np.ndarray]:
    """The pen's strokes (K, 2) of one glyph, y down, in the font's units; empty if the font has no
    such glyph."""
    strokes: list[list[tuple[float, float]]] = []
    for start, end in _font(font).lines_for_text(key):
        # the pen lifts: a new stroke
        if not strokes or strokes[-1][-1] != start:
            strokes.append([start])
        strokes[-1].append(end)
    return [np.asarray(stroke, np.float32) for stroke in strokes]


@cache
def bank(digits: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every glyph of NEGATIVE_KEYS (digits=False) or every digit of DIGIT_FONTS (True), as packed
    polylines (G, P, 2) and pen (G, P - 1), with labels (G,) (the digit, or -1)."""
    keys = (
        [(font, str(d)) for font in DIGIT_FONTS for d in range(10)]
        if digits
        else [(font, key) for font, chars in NEGATIVE_KEYS.items() for key in chars]
    )
    drawings = [(glyph_strokes(font, key), int(key) if digits else -1) for font, key in keys]
    drawings = [(strokes, label) for strokes, label in drawings if strokes]
    points, pen = pack([strokes for strokes, _ in drawings])
    return points, pen, torch.tensor([label for _, label in drawings])


def generate_glyphs(
    n: int, digits: bool, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """n glyphs drawn as binary ink (n, 1, HI, HI) on `device`, picked at random from bank(digits),
    with their labels (n,): turned, slanted, wobbled and drawn with a pen from thin to thick."""
    points, pen, labels = bank(digits)
    picked = torch.randint(len(labels), (n,), generator=generator)
    turn = DIGIT_TURN if digits else TURN
    # a digit's own proportions are kept (min_aspect 0): a 1 is a sliver
    ink = draw(
        points[picked],
        pen[picked],
        generator,
        device,
        turn=turn,
        shear=SHEAR,
        wobble=WOBBLE,
        min_aspect=0.0 if digits else 0.4,
    )
    return ink, labels[picked].to(device)


def main() -> None:
    """Write a sheet of 128 stroke-font non-digits and 128 digits to the path given, for looking
    at."""
    import sys
    from pathlib import Path

    from torchvision.utils import save_image

    from mnist_lit.data.synthetic.ink import fit_field

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/strokes.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    others, _ = generate_glyphs(128, False, generator, torch.device("cpu"))
    digits, _ = generate_glyphs(128, True, generator, torch.device("cpu"))
    # non-digits in the top half, digits in the bottom half
    save_image(fit_field(torch.cat([others, digits])), out, nrow=16, pad_value=0.5)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
