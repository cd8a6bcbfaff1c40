"""The decisions between a picture's readings, once the network has answered every candidate: a wide
piece read whole or cut in two, and a picture of several pieces read as a number or as one drawing.

Try it: python predict.py image=number.png read=auto
"""

from __future__ import annotations

from mnist_lit.answer import DIGIT, Answer
from mnist_lit.reading.preprocess import Box
from mnist_lit.reading.segment import Piece, Reading

# pieces in a picture for a rejected one among them to be read as a digit of a number
KEEP_NUMBER_FROM = 3
# a lone piece is cut only when both halves read as sure digits, each at least this sure
LONE_CONFIDENCE = 0.9

# a picture's digits, left to right: each one's answer and its box
Digits = list[tuple[Answer, Box | None]]


def digit_score(answer: Answer) -> float:
    """How well an answer reads as a digit: its confidence, 0 for "not a digit"."""
    return 0.0 if answer.digit is None else answer.confidence


def choose_split(
    piece: Piece, whole: Answer, halves: list[tuple[Answer, Answer]], lone: bool = False
) -> Digits:
    """A piece read whole, or split in two where both halves read as digits more surely than the
    whole does (two touching digits: the weaker half beats the whole; demanding a margin of 0.1
    lost more touching pairs than it kept wide digits whole). `whole` is the piece's answer and
    `halves` the answers of its candidate splits, in the order of `piece.splits`. A picture's
    `lone` piece is cut only when both halves are sure digits too: halves of a heart or an "m"
    often pass the first test alone."""
    best: Digits = [(whole, piece.box)]
    score = digit_score(whole)
    for (left, right), answers in zip(piece.splits, halves):
        pair: Digits = [(answers[0], left.box), (answers[1], right.box)]
        pair_score = min(digit_score(a) for a, _ in pair)
        unsure_half = any(a.verdict != DIGIT for a, _ in pair)
        if lone and (pair_score < LONE_CONFIDENCE or unsure_half):
            continue
        if pair_score > score:
            best, score = pair, pair_score
    return best


def resolve_number(
    digits: Digits, reading: Reading, whole: Answer | None
) -> tuple[Digits, Reading]:
    """A picture of several pieces, some read as no digit. Most of them digits, and the whole no
    digit either (or not read whole: `read=number`): a number with a badly written digit, whose
    likeliest reading is kept, marked unsure. Otherwise, in `auto` (a sun's rays around a face, a
    smiley's eyes), the picture is no number but one drawing, read whole. Returns the digits and the
    reading they come from."""
    rejected = sum(a.digit is None for a, _ in digits)
    if (
        (whole is None or whole.digit is None)
        and len(digits) >= KEEP_NUMBER_FROM
        and 2 * rejected < len(digits)
    ):
        return [(a.as_unsure() if a.digit is None else a, box) for a, box in digits], reading
    if whole is not None:
        return [(whole, reading.whole.box)], Reading([reading.whole], single=True)
    return digits, reading
