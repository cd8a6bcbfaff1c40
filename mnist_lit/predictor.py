"""Classify user pictures in batches with a train.py checkpoint (on torch) or an exported ONNX model (on
onnxruntime, without torch); no Lightning, no torchvision.

Try it: python predict.py image=path/to/digits/ format=jsonl
"""

from __future__ import annotations

import functools
import glob
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from mnist_lit import NUM_CLASSES, checkpoints
from mnist_lit.answer import DIGIT, NOT_A_DIGIT, Answer, Thresholds, number_answer, reading_fields, verdicts
from mnist_lit.pictures import PictureError, list_pictures, read_digits
from mnist_lit.segment import Piece, Reading

PARALLEL_FROM = 64  # below this many pictures, worker processes cost more than they save
CHUNK = 16  # pictures handed to a worker at a time
KEEP_NUMBER_FROM = 3  # pieces in a picture for a rejected one among them to be read as a digit of a number
LONE_CONFIDENCE = 0.9  # a lone piece is cut only when both halves read as sure digits, each at least this sure


@dataclass
class Prediction:
    """The outcome for one picture: its answer (mnist_lit.answer), one per digit when it holds a number, or an
    error message."""

    image: str
    pixels: np.ndarray | None = None  # the 28x28 uint8 input the model saw (of a single digit)
    answer: Answer | None = None  # the picture's answer: its digit's, or its number's summary
    error: str | None = None
    reading: Reading | None = None  # the digits found in it, with their boxes (mnist_lit.segment)
    digits: list[tuple[Answer, tuple[int, int, int, int] | None]] = field(default_factory=list)  # answers, boxes

    @classmethod
    def of(cls, image: str, reading: Reading) -> Prediction:
        """A picture's digits, read and ready to classify; a single digit's pixels are its input."""
        return cls(image, pixels=reading.pieces[0].pixels if reading.single else None, reading=reading)

    def fields(self) -> dict:
        """The answer's JSON fields (mnist_lit.answer.reading_fields), or {"error": ...}."""
        if self.error or self.answer is None:
            return {"error": self.error}
        return reading_fields(self.answer, self.digits, single=len(self.digits) <= 1)

    def to_json(self) -> str:
        """One JSON line: image, then the answer's fields (verdict, digit, number, digits, ...) or the error."""
        return json.dumps({"image": self.image, **self.fields()})


@dataclass
class Found:
    """The pictures a spec names, an entry with an error for each unusable spec, and the files skipped as not
    pictures (in a folder)."""

    paths: list[str]
    failed: list[Prediction]
    skipped: list[str]

    def skipped_line(self) -> str | None:
        """One line naming the files skipped, or None when there were none."""
        if not self.skipped:
            return None
        return f"skipped {len(self.skipped)} file(s) that are not pictures: {', '.join(self.skipped)}"


def find_images(spec: str) -> Found:
    """Paths named by a file, a folder (its pictures, sorted) or a glob; plus a failed entry per unusable spec."""
    path = Path(spec).expanduser()
    if path.is_dir():
        found, skipped = list_pictures(path)
        if not found:
            return Found([], [Prediction(spec, error="folder has no pictures")], skipped)
        return Found(found, [], skipped)
    if path.is_file():
        return Found([str(path)], [], [])
    if glob.has_magic(spec):
        found = sorted(p for p in glob.glob(os.path.expanduser(spec), recursive=True) if os.path.isfile(p))
        return Found(found, [] if found else [Prediction(spec, error="no file matches this pattern")], [])
    return Found([], [Prediction(spec, error="no such file or folder")], [])


def load_picture(path: str, read: str = "auto") -> Prediction:
    """Read one picture's digits (`read`: auto, digit or number); any problem becomes the Prediction's error,
    never an exception."""
    try:
        reading = read_digits(path, read)
    except PictureError as err:
        return Prediction(path, error=str(err))
    return Prediction.of(path, reading)


def load_pictures(paths: Sequence[str], workers: int, read: str = "auto") -> list[Prediction]:
    """Preprocess every picture, across `workers` processes when there are many."""
    load = functools.partial(load_picture, read=read)
    if workers <= 1 or len(paths) < PARALLEL_FROM:
        return [load(p) for p in paths]
    # fork: the workers inherit the imports; call it before loading a model, whose runtime starts threads
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        # small chunks: the workers finish together, neither waits long on the other's last chunk
        return list(pool.map(load, paths, chunksize=max(1, min(CHUNK, len(paths) // (4 * workers)))))


class Predictor:
    """A model file (checkpoints.load_model: .ckpt on torch, .onnx on onnxruntime) that answers pictures."""

    def __init__(self, path: str | os.PathLike, device: str = "auto", threads: int = 0) -> None:
        self.path = str(path)
        self.model = checkpoints.load_model(self.path, device, threads)
        self.calibration = self.model.calibration

    def thresholds(self, not_digit: float | str | None, unsure: float) -> Thresholds:
        """The settings as Thresholds: not_digit `auto` takes the checkpoint's own, chosen on its validation data."""
        if not_digit == "auto":
            return Thresholds(self.calibration.not_digit, unsure)
        return Thresholds(None if not_digit is None else float(not_digit), unsure)

    def scores(self, pixels: list[np.ndarray], batch_size: int = 256) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, 10) calibrated digit probabilities and (N,) probabilities of no digit (or None) of N (28, 28) uint8
        inputs, `batch_size` per forward pass."""
        probs, no_digit = [], []
        for start in range(0, len(pixels), batch_size):
            x = np.stack(pixels[start : start + batch_size]).astype(np.float32)[:, None] / 255.0  # (B, 1, 28, 28)
            p, n = self.model.scores(x)
            probs.append(p)
            no_digit.append(n)
        if not probs:
            return np.zeros((0, NUM_CLASSES)), None
        return np.concatenate(probs), None if no_digit[0] is None else np.concatenate(no_digit)

    def classify(self, predictions: Iterable[Prediction], thresholds: Thresholds, batch_size: int = 256) -> None:
        """Fill in the answers of every prediction that was read: every digit and every candidate split of a
        wide piece goes through the network in batches, then each wide piece keeps the reading it likes best."""
        todo = [p for p in predictions if p.reading is not None or p.pixels is not None]
        for p in todo:
            if p.reading is None:  # pixels alone: one digit, as read_picture gives them
                p.reading = Reading([Piece(p.pixels, None)], single=True)
        inputs = [
            px for p in todo for piece in [*([p.reading.whole] if p.reading.whole else []), *p.reading.pieces]
            for px in [piece.pixels, *(half.pixels for pair in piece.splits for half in pair)]
        ]  # fmt: skip
        found = iter(verdicts(*self.scores(inputs, batch_size), thresholds))
        for p in todo:
            whole = next(found) if p.reading.whole else None
            lone = p.reading.single
            p.digits = [chosen for piece in p.reading.pieces for chosen in choose(piece, found, lone)]
            if len(p.digits) > 1 and any(a.digit is None for a, _ in p.digits):
                settle(p, whole)
            one = len(p.digits) == 1  # one digit (a wide one read whole, too): answered as a single digit
            p.answer = p.digits[0][0] if one else number_answer([a for a, _ in p.digits])
            p.pixels = p.reading.pieces[0].pixels if one else None


def settle(p: Prediction, whole: Answer | None) -> None:
    """A picture of several pieces, some read as no digit. Most of them digits, and the whole no digit either (or
    not read whole: `read=number`): a number with a badly written digit, whose likeliest reading is kept, marked
    unsure. Otherwise, in `auto` (a sun's rays around a face, a smiley's eyes), the picture is no number but one
    drawing, read whole."""
    rejected = sum(a.digit is None for a, _ in p.digits)
    if (whole is None or whole.digit is None) and len(p.digits) >= KEEP_NUMBER_FROM and 2 * rejected < len(p.digits):
        p.digits = [(a.as_unsure() if a.digit is None else a, box) for a, box in p.digits]
    elif whole is not None:
        p.digits = [(whole, p.reading.whole.box)]
        p.reading = Reading([p.reading.whole], single=True)


def choose(
    piece: Piece, found: Iterator[Answer], lone: bool = False
) -> list[tuple[Answer, tuple[int, int, int, int] | None]]:
    """A piece read whole, or split in two where both halves read as digits more surely than the whole does (two
    touching digits: the weaker half beats the whole; demanding a margin of 0.1 lost more touching pairs than it
    kept wide digits whole); takes the piece's answers, whole first, from `found`. A picture's `lone` piece is cut
    only when both halves are sure digits too: halves of a heart or an "m" often pass the first test alone."""
    best, score = [(next(found), piece.box)], 0.0
    score = digit_score(best[0][0])
    for left, right in piece.splits:
        pair = [(next(found), left.box), (next(found), right.box)]
        pair_score = min(digit_score(a) for a, _ in pair)
        if lone and (pair_score < LONE_CONFIDENCE or any(a.verdict != DIGIT for a, _ in pair)):
            continue
        if pair_score > score:
            best, score = pair, pair_score
    return best


def digit_score(answer: Answer) -> float:
    """How well an answer reads as a digit: its confidence, 0 for "not a digit"."""
    return 0.0 if answer.digit is None else answer.confidence


def format_table(predictions: Sequence[Prediction], topk: int) -> str:
    """A human-readable table: file, verdict, digit, confidence and the top-k digits."""
    rows = [("image", "verdict", "digit", "confidence", f"top-{topk} digits")]  # "digit": the number, for one
    for p in predictions:
        if p.error or p.answer is None:
            rows.append((p.image, "error", "-", "-", str(p.error)))
            continue
        a = p.answer
        if len(p.digits) > 1:  # a number: each digit's reading instead of the top-k
            number = "".join(str(d.digit) for d, _ in p.digits if d.digit is not None) or "-"
            each = ", ".join(f"{'?' if d.digit is None else d.digit} {100 * d.confidence:.1f}%" for d, _ in p.digits)
            rows.append((p.image, a.verdict, number, f"{100 * a.confidence:.1f}%", f"digits: {each}"))
            continue
        order = np.argsort(a.probs)[::-1][:topk]
        top = ", ".join(f"{k} {100 * a.probs[k]:.1f}%" for k in order)
        digit = "-" if a.digit is None else str(a.digit)
        rows.append((p.image, a.verdict, digit, f"{100 * a.confidence:.1f}%", top))
    width = max(len(r[0]) for r in rows)
    verdict = max(len(NOT_A_DIGIT), len("verdict"))
    digits = max(len(r[2]) for r in rows)
    return "\n".join(f"{r[0]:<{width}}  {r[1]:<{verdict}}  {r[2]:>{digits}}  {r[3]:>10}  {r[4]}" for r in rows)
