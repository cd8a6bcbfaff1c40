"""The decisions between a picture's readings: cut a wide piece or not, a number or one drawing.

Run: pytest tests/reading/test_numbers.py
"""

from __future__ import annotations

import numpy as np
import pytest

from mnist_lit.answer import DIGIT, NOT_A_DIGIT, UNSURE, Answer, number_answer
from mnist_lit.reading.numbers import choose_split, resolve_number
from mnist_lit.reading.preprocess import Box
from mnist_lit.reading.segment import Piece, Reading


def answer(verdict: str, digit: int | None, confidence: float) -> Answer:
    return Answer(verdict, digit, confidence, [])


@pytest.mark.parametrize(
    ("whole", "halves", "lone", "read_as"),
    [
        (
            answer(NOT_A_DIGIT, None, 0.99),
            [answer(DIGIT, 7, 0.99), answer(DIGIT, 1, 0.95)],
            True,
            [7, 1],
        ),
        (
            answer(NOT_A_DIGIT, None, 0.99),
            [answer(DIGIT, 7, 0.99), answer(DIGIT, 1, 0.8)],
            True,
            [None],
        ),
        (
            answer(NOT_A_DIGIT, None, 0.99),
            [answer(DIGIT, 7, 0.99), answer(UNSURE, 1, 0.95)],
            True,
            [None],
        ),
        (
            answer(NOT_A_DIGIT, None, 0.99),
            [answer(DIGIT, 7, 0.99), answer(DIGIT, 1, 0.8)],
            False,
            [7, 1],
        ),
        (answer(DIGIT, 0, 0.97), [answer(DIGIT, 1, 0.96), answer(DIGIT, 1, 0.96)], False, [0]),
    ],
)
def test_a_piece_is_cut_when_both_halves_read_better_and_a_lone_one_only_when_both_are_sure(
    whole, halves, lone, read_as
):
    left, right = (
        Piece(np.zeros((28, 28)), Box(0, 0, 5, 10)),
        Piece(np.zeros((28, 28)), Box(5, 0, 10, 10)),
    )
    piece = Piece(np.zeros((28, 28)), Box(0, 0, 10, 10), splits=[(left, right)])
    chosen = choose_split(piece, whole, [tuple(halves)], lone=lone)
    assert [a.digit for a, _ in chosen] == read_as


def probs_for(digit: int) -> list[float]:
    return [0.9 if k == digit else 0.1 / 9 for k in range(10)]


@pytest.mark.parametrize(
    ("parts", "whole", "number", "verdict"),
    [
        # one digit badly written: kept, unsure
        ([7, None, 3, 5], answer(NOT_A_DIGIT, None, 0.9), "7035", UNSURE),
        # half of it no digit: a drawing
        ([7, None, None, 5], answer(NOT_A_DIGIT, None, 0.9), "", NOT_A_DIGIT),
        # two pieces: a drawing
        ([None, 3], answer(NOT_A_DIGIT, None, 0.9), "", NOT_A_DIGIT),
        # the whole reads as one digit: it is one
        ([7, None, 3], answer(DIGIT, 8, 0.9), "8", DIGIT),
        # read=number: never read whole
        ([7, None, 3], None, "703", UNSURE),
    ],
)
def test_a_rejected_piece_among_digits_is_an_unsure_digit_else_the_picture_is_one_drawing(
    parts, whole, number, verdict
):
    found = [
        Answer(NOT_A_DIGIT, None, 0.9, probs_for(0), not_digit=0.9)
        if d is None
        else Answer(DIGIT, d, 0.9, probs_for(d))
        for d in parts
    ]
    pieces = [Piece(np.zeros((28, 28)), Box(10 * i, 0, 10 * i + 8, 10)) for i in range(len(parts))]
    whole_piece = Piece(np.zeros((28, 28)), Box(0, 0, 10 * len(parts), 10)) if whole else None
    reading = Reading(pieces, single=False, whole=whole_piece)
    digits, reading = resolve_number(
        [(a, piece.box) for a, piece in zip(found, pieces)], reading, whole
    )
    answers = [a for a, _ in digits]
    assert reading.single == (len(answers) == 1 and whole is not None)
    assert "".join(str(a.digit) for a in answers if a.digit is not None) == number
    summary = answers[0] if len(answers) == 1 else number_answer(answers)
    assert summary.verdict == verdict
