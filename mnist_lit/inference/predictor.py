"""Answer pictures in batches with a train.py checkpoint (on torch) or an exported ONNX model (on
onnxruntime, without torch): every digit and candidate cut through the network at once, then each
picture's reading chosen.

Try it: python predict.py image=path/to/digits/ format=jsonl
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from mnist_lit import NUM_CLASSES
from mnist_lit.answer import Answer, Thresholds, number_answer, reading_fields, verdicts
from mnist_lit.inference.model import load_model
from mnist_lit.reading.numbers import Digits, choose_split, resolve_number
from mnist_lit.reading.segment import Piece, Reading


@dataclass
class Prediction:
    """The outcome for one picture: its answer (mnist_lit.answer), one per digit when it holds a
    number, or an error message."""

    image: str
    # the 28x28 uint8 input the model saw (of a single digit)
    pixels: np.ndarray | None = None
    # the picture's answer: its digit's, or its number's summary
    answer: Answer | None = None
    error: str | None = None
    # the digits found in it, with their boxes (mnist_lit.reading.segment)
    reading: Reading | None = None
    # each digit's answer and box, left to right
    digits: Digits = field(default_factory=list)

    @classmethod
    def of(cls, image: str, reading: Reading) -> Prediction:
        """A picture's digits, read and ready to classify; a single digit's pixels are its input."""
        return cls(
            image, pixels=reading.pieces[0].pixels if reading.single else None, reading=reading
        )

    def model_input(self) -> np.ndarray:
        """The 28x28 input the model saw, or each digit's side by side for a number: (28, 28 *
        digits) uint8."""
        return np.hstack(
            [self.pixels]
            if self.pixels is not None
            else [piece.pixels for piece in self.reading.pieces]
        )

    def fields(self) -> dict:
        """The answer's JSON fields (mnist_lit.answer.reading_fields), or {"error": ...}."""
        if self.error or self.answer is None:
            return {"error": self.error}
        return reading_fields(self.answer, self.digits, single=len(self.digits) <= 1)

    def to_json(self) -> str:
        """One JSON line: image, then the answer's fields (verdict, digit, number, digits, ...) or
        the error."""
        return json.dumps({"image": self.image, **self.fields()})


class Predictor:
    """A model file (inference.model.load_model: .ckpt on torch, .onnx on onnxruntime) that answers
    pictures."""

    def __init__(self, path: str | os.PathLike, device: str = "auto", threads: int = 0) -> None:
        self.path = str(path)
        self.model = load_model(self.path, device, threads)
        self.calibration = self.model.calibration

    def thresholds(self, not_digit: float | str | None, unsure: float) -> Thresholds:
        """The settings as Thresholds: not_digit `auto` takes the checkpoint's own, chosen on its
        validation data."""
        if not_digit == "auto":
            return Thresholds(self.calibration.not_digit, unsure)
        return Thresholds(None if not_digit is None else float(not_digit), unsure)

    def scores(
        self, pixels: list[np.ndarray], batch_size: int = 256
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, 10) calibrated digit probabilities and (N,) probabilities of no digit (or None) of N
        (28, 28) uint8 inputs, `batch_size` per forward pass."""
        probs, no_digit = [], []
        for start in range(0, len(pixels), batch_size):
            # (B, 1, 28, 28)
            x = np.stack(pixels[start : start + batch_size]).astype(np.float32)[:, None] / 255.0
            p, n = self.model.scores(x)
            probs.append(p)
            no_digit.append(n)
        if not probs:
            return np.zeros((0, NUM_CLASSES)), None
        return np.concatenate(probs), None if no_digit[0] is None else np.concatenate(no_digit)

    def fill_answers(
        self, predictions: Iterable[Prediction], thresholds: Thresholds, batch_size: int = 256
    ) -> None:
        """Fill in the answers of every prediction that was read, in place: every digit and every
        candidate split of a wide piece goes through the network in one batched pass, then each
        wide piece keeps the reading it likes best."""
        todo = [p for p in predictions if p.reading is not None or p.pixels is not None]
        # pixels alone are one digit, as read_picture gives them
        readings = [p.reading or Reading([Piece(p.pixels, None)], single=True) for p in todo]
        inputs, places = gather_inputs(readings)
        answers = verdicts(*self.scores(inputs, batch_size), thresholds)
        for p, reading, (whole_at, pieces_at) in zip(todo, readings, places):
            whole = None if whole_at is None else answers[whole_at]
            digits: Digits = []
            for piece, (piece_at, halves_at) in zip(reading.pieces, pieces_at):
                halves = [(answers[i], answers[j]) for i, j in halves_at]
                digits += choose_split(piece, answers[piece_at], halves, reading.single)
            if len(digits) > 1 and any(a.digit is None for a, _ in digits):
                digits, reading = resolve_number(digits, reading, whole)
            # one digit (a wide one read whole, too) is answered as a single digit
            one = len(digits) == 1
            p.reading, p.digits = reading, digits
            p.answer = digits[0][0] if one else number_answer([a for a, _ in digits])
            p.pixels = reading.pieces[0].pixels if one else None


# where a piece's inputs are in the batch: the piece's own index, and each split's two halves'
PieceIndices = tuple[int, list[tuple[int, int]]]


def gather_inputs(
    readings: list[Reading],
) -> tuple[list[np.ndarray], list[tuple[int | None, list[PieceIndices]]]]:
    """Every (28, 28) input the readings need, in one list, and for each reading where its inputs
    are: the whole picture's index (or None), and each piece's PieceIndices."""
    inputs: list[np.ndarray] = []

    def add(pixels: np.ndarray) -> int:
        inputs.append(pixels)
        return len(inputs) - 1

    places = []
    for reading in readings:
        whole_at = add(reading.whole.pixels) if reading.whole else None
        pieces_at = []
        for piece in reading.pieces:
            piece_at = add(piece.pixels)
            halves_at = [(add(left.pixels), add(right.pixels)) for left, right in piece.splits]
            pieces_at.append((piece_at, halves_at))
        places.append((whole_at, pieces_at))
    return inputs, places
