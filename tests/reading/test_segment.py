"""Reading numbers: segmentation on synthetic pictures, and the answer's fields.

Run: pytest tests/reading/test_segment.py
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_lit.answer import DIGIT, NOT_A_DIGIT, UNSURE, Answer, number_answer, reading_fields
from mnist_lit.reading.segment import label, read

PEN = 9


def paper(width: int = 420, height: int = 160) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGB", (width, height), (240, 238, 230))
    return img, ImageDraw.Draw(img)


def one(draw: ImageDraw.ImageDraw, x: int) -> None:
    draw.line([(x, 40), (x, 120)], fill=(20, 20, 20), width=PEN)


def seven(draw: ImageDraw.ImageDraw, x: int) -> None:
    draw.line([(x - 25, 40), (x + 25, 40), (x - 5, 120)], fill=(20, 20, 20), width=PEN)


def five_with_loose_bar(draw: ImageDraw.ImageDraw, x: int) -> None:
    draw.line([(x - 18, 48), (x - 20, 78)], fill=(20, 20, 20), width=PEN)
    draw.arc([(x - 24, 70), (x + 24, 122)], start=-150, end=140, fill=(20, 20, 20), width=PEN)
    # drawn apart, as people draw it
    draw.line([(x - 14, 38), (x + 22, 38)], fill=(20, 20, 20), width=PEN)


def boxes(img: Image.Image, mode: str = "auto") -> list[tuple[int, int, int, int]]:
    return [piece.box for piece in read(img, mode).pieces]


def test_labelling_finds_8_connected_components():
    mask = np.zeros((6, 8), bool)
    # diagonal neighbours: one component
    mask[0, 0] = mask[1, 1] = True
    mask[4:6, 5:8] = True
    labels, n = label(mask)
    assert n == 2
    assert labels[0, 0] == labels[1, 1] != labels[5, 7]
    assert (labels == 0).sum() == (~mask).sum()


def test_digits_are_found_left_to_right_with_boxes_in_picture_pixels():
    img, draw = paper()
    for x, digit in ((320, seven), (80, one), (200, seven)):
        digit(draw, x)
    found = boxes(img)
    assert len(found) == 3
    assert [b[0] for b in found] == sorted(b[0] for b in found)
    # the 1's box is where it was drawn
    assert abs((found[0][0] + found[0][2]) / 2 - 80) < 10
    assert 30 <= found[0][1] <= 45
    assert 115 <= found[0][3] <= 130


def test_a_loose_bar_and_specks_belong_to_no_digit_of_their_own():
    img, draw = paper()
    five_with_loose_bar(draw, 120)
    one(draw, 300)
    # specks: JPEG dirt, dust
    for x, y in ((30, 140), (390, 20), (200, 150)):
        draw.ellipse([(x, y), (x + 2, y + 2)], fill=(60, 60, 60))
    assert len(boxes(img)) == 2


def test_a_single_digit_in_two_strokes_or_with_a_gap_stays_one_digit():
    img, draw = paper(200, 160)
    # a 4 in two strokes
    draw.line([(70, 40), (60, 95), (120, 95)], fill=(20, 20, 20), width=PEN)
    draw.line([(105, 50), (105, 130)], fill=(20, 20, 20), width=PEN)
    reading = read(img, "auto")
    assert reading.single
    assert len(reading.pieces) == 1
    img, draw = paper(200, 160)
    # a 0 with gaps
    draw.arc([(60, 30), (140, 130)], start=10, end=170, fill=(20, 20, 20), width=PEN)
    draw.arc([(60, 30), (140, 130)], start=190, end=350, fill=(20, 20, 20), width=PEN)
    assert read(img, "auto").single


def test_a_wide_piece_carries_candidate_cuts():
    img, draw = paper()
    seven(draw, 170)
    # its bar runs into the first's: two digits, one piece
    seven(draw, 215)
    one(draw, 330)
    pieces = read(img, "number").pieces
    assert len(pieces) == 2
    # the touching pair
    assert pieces[0].splits
    left, right = pieces[0].splits[0]
    assert left.box[2] <= right.box[0] + 2


def test_a_lone_piece_in_auto_may_be_cut_only_when_much_wider_than_tall():
    pair, draw = paper()
    seven(draw, 170)
    # two touching sevens, and nothing else: one piece, wider than tall
    seven(draw, 215)
    upright, draw = paper()
    seven(draw, 200)
    for img, cut in ((pair, True), (upright, False)):
        reading = read(img, "auto")
        # read as one digit unless the classifier finds two sure digits in it
        assert reading.single
        assert bool(reading.pieces[0].splits) == cut


def test_digit_mode_reads_the_whole_picture_as_one_digit():
    img, draw = paper()
    one(draw, 100)
    one(draw, 300)
    reading = read(img, "digit")
    assert reading.single
    assert len(reading.pieces) == 1


def test_pictures_of_every_format_segment_the_same():
    img, draw = paper()
    one(draw, 100)
    seven(draw, 250)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=70)
    assert len(boxes(Image.open(io.BytesIO(buf.getvalue())))) == 2


def answer(verdict: str, digit: int | None, confidence: float = 0.9) -> Answer:
    probs = [0.0] * 10
    if digit is not None:
        probs[digit] = confidence
    return Answer(verdict, digit, confidence, probs, alternative=3 if verdict == UNSURE else None)


@pytest.mark.parametrize(
    ("parts", "number", "verdict"),
    [
        ([answer(DIGIT, 2), answer(DIGIT, 0), answer(DIGIT, 2), answer(DIGIT, 6)], "2026", DIGIT),
        ([answer(DIGIT, 4), answer(UNSURE, 9)], "49", UNSURE),
        ([answer(DIGIT, 4), answer(NOT_A_DIGIT, None), answer(DIGIT, 1)], "41", DIGIT),
        ([answer(NOT_A_DIGIT, None), answer(NOT_A_DIGIT, None)], "", NOT_A_DIGIT),
    ],
)
def test_a_number_has_every_field_of_the_contract(parts, number, verdict):
    boxes_ = [(10 * k, 0, 10 * k + 8, 20) for k in range(len(parts))]
    fields = reading_fields(number_answer(parts), list(zip(parts, boxes_)), single=False)
    assert fields["number"] == number
    assert fields["verdict"] == verdict
    assert fields["digit"] is None
    assert [d["box"] for d in fields["digits"]] == [list(b) for b in boxes_]
    for d, part in zip(fields["digits"], parts):
        assert {"digit", "confidence", "probs", "verdict", "box"} <= set(d)
        assert d["digit"] == part.digit
        assert d["verdict"] == part.verdict


def test_a_single_digit_keeps_its_fields_and_gains_number_and_digits():
    a = answer(DIGIT, 7)
    fields = reading_fields(a, [(a, (1, 2, 3, 4))], single=True)
    assert fields["digit"] == 7
    assert fields["number"] == "7"
    assert fields["probs"] == a.fields()["probs"]
    assert fields["digits"][0]["box"] == [1, 2, 3, 4]


def test_a_tiny_digit_on_a_big_canvas_is_still_read_in_auto():
    # it fades away at the line's working size; the single-digit reading looks again at full detail
    img = Image.new("RGB", (1600, 1200), (240, 238, 230))
    ImageDraw.Draw(img).line([(800, 600), (812, 600), (804, 622)], fill=(90, 90, 90), width=2)
    reading = read(img, "auto")
    assert reading.single
    assert reading.pieces[0].pixels.max() > 200
