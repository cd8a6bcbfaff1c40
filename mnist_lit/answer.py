"""The answer for one picture, read from the model's calibrated probabilities: a verdict ("digit",
"unsure" or "not a digit"), the digit, a calibrated confidence and the probabilities. predict.py and
serve.py answer through here, with a checkpoint or an exported ONNX model alike, so they always
agree. numpy only: torch-free prediction uses it too.

Try it: python predict.py image=path/to/pictures/ format=jsonl

- "not a digit": the network's 11th output (trained on generated letters, symbols and scribbles)
gives the picture a probability of holding no digit above `not_digit`. Networks without that
output never say it.
- "unsure": a digit, but the runner-up's calibrated probability is within `unsure` of the winner's.
- "digit": otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

DIGIT, UNSURE, NOT_A_DIGIT = "digit", "unsure", "not a digit"
VERDICTS = (DIGIT, UNSURE, NOT_A_DIGIT)
# decimals of the probabilities in an answer
ROUND = 6
# each digit's, in a `digits` list
DIGIT_FIELDS = ("verdict", "digit", "confidence", "probs", "alternative")


@dataclass(frozen=True)
class Calibration:
    """How a checkpoint's logits are read, fitted on its validation split when it was trained."""

    # divides the digit logits
    temperature: float = 1.0
    # the recommended rejection threshold; None: the network cannot reject
    not_digit: float | None = None


@dataclass(frozen=True)
class Thresholds:
    """When an answer says "not a digit" or "unsure" (conf/predict.yaml)."""

    # reject above this probability of no digit; None: never
    not_digit: float | None = None
    # unsure when the top two digit probabilities are closer than this
    unsure: float = 0.0


@dataclass
class Answer:
    """One picture's answer."""

    verdict: str
    # None for "not a digit"
    digit: int | None
    # the probability of the verdict: of `digit`, or of holding no digit
    confidence: float
    # calibrated, per digit, given that the picture holds one
    probs: list[float]
    # the runner-up digit, when "unsure"
    alternative: int | None = None
    # the probability that the picture holds no digit, when the network has one
    not_digit: float | None = None

    def as_unsure(self) -> Answer:
        """This answer as an unsure digit: the likeliest digit, the runner-up its alternative (for a
        piece of a number that read as no digit)."""
        first, second = (int(k) for k in np.argsort(self.probs)[::-1][:2])
        return Answer(
            UNSURE,
            first,
            float(self.probs[first]),
            self.probs,
            alternative=second,
            not_digit=self.not_digit,
        )

    def fields(self) -> dict[str, Any]:
        """The answer as JSON-ready fields: verdict, digit, confidence, probs, and alternative /
        not_digit if set."""
        out: dict[str, Any] = {
            "verdict": self.verdict,
            "digit": self.digit,
            "confidence": round(self.confidence, ROUND),
            "probs": [round(p, ROUND) for p in self.probs],
        }
        if self.alternative is not None:
            out["alternative"] = self.alternative
        if self.not_digit is not None:
            out["not_digit"] = round(self.not_digit, ROUND)
        return out


def verdicts(
    probs: np.ndarray, no_digit: np.ndarray | None, thresholds: Thresholds
) -> list[Answer]:
    """One Answer per row of (N, 10) calibrated digit probabilities, with (N,) probabilities of no
    digit (or None)."""
    probs = probs.astype(np.float64)
    out = []
    for i, row in enumerate(probs):
        first, second = (int(k) for k in np.argsort(row)[::-1][:2])
        shown = None if no_digit is None else float(no_digit[i])
        if shown is not None and thresholds.not_digit is not None and shown > thresholds.not_digit:
            out.append(Answer(NOT_A_DIGIT, None, shown, row.tolist(), not_digit=shown))
        else:
            answer = Answer(DIGIT, first, float(row[first]), row.tolist(), not_digit=shown)
            out.append(
                answer.as_unsure() if row[first] - row[second] < thresholds.unsure else answer
            )
    return out


def number_answer(parts: list[Answer]) -> Answer:
    """A number's summary answer from its digits' (left to right): "unsure" if any digit is, "not a
    digit" if none is one; its confidence is the product of the digits' (the chance that all are
    right, were they independent)."""
    digits = [a for a in parts if a.digit is not None]
    if not digits:
        return Answer(NOT_A_DIGIT, None, float(np.prod([a.confidence for a in parts])), [])
    verdict = UNSURE if any(a.verdict == UNSURE for a in digits) else DIGIT
    return Answer(verdict, None, float(np.prod([a.confidence for a in digits])), [])


def reading_fields(
    answer: Answer, digits: list[tuple[Answer, Any]], single: bool
) -> dict[str, Any]:
    """A picture's JSON fields: a single digit's answer fields, or a number's verdict and
    confidence; then `number` (the digits read, left to right, as a string) and `digits` (each one's
    answer and its box)."""
    if single:
        out = answer.fields()
    else:
        out = {
            "verdict": answer.verdict,
            "digit": None,
            "confidence": round(answer.confidence, ROUND),
        }
    out["number"] = "".join(str(a.digit) for a, _ in digits if a.digit is not None)
    out["digits"] = [
        {
            **{k: v for k, v in a.fields().items() if k in DIGIT_FIELDS},
            "box": None if box is None else list(box),
        }
        for a, box in digits
    ]
    return out
