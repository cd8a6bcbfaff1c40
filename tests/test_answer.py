"""The answer format shared by predict.py, serve.py and export.py.  Run: pytest
tests/test_answer.py"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from mnist_lit.answer import DIGIT, NOT_A_DIGIT, UNSURE, Calibration, Thresholds, verdicts
from mnist_lit.inference.torch_model import Scorer

THRESHOLDS = Thresholds(not_digit=0.5, unsure=0.3)


def answers(logits: np.ndarray, calibration: Calibration, thresholds: Thresholds) -> list:
    """The answers for rows of logits, through the real Scorer (with a network that passes its input
    through)."""
    scorer = Scorer(
        nn.Identity(), 0.0, 1.0, calibration.temperature, not_digit=logits.shape[1] > 10
    )
    out = scorer(torch.from_numpy(logits).float())
    probs, no_digit = out if isinstance(out, tuple) else (out, None)
    return verdicts(probs.numpy(), None if no_digit is None else no_digit.numpy(), thresholds)


def logits(digits: dict[int, float], none: float | None = None) -> np.ndarray:
    """One row of logits: -10 except the digits given; an 11th (not a digit) when `none` is
    given."""
    row = np.full(10, -10.0)
    for k, v in digits.items():
        row[k] = v
    return np.append(row, none)[None] if none is not None else row[None]


@pytest.mark.parametrize(
    ("row", "verdict", "digit", "alternative"),
    [
        (logits({7: 10.0}, none=-5.0), DIGIT, 7, None),
        (logits({4: 5.0, 9: 4.9}, none=-5.0), UNSURE, 4, 9),
        (logits({3: 2.0}, none=10.0), NOT_A_DIGIT, None, None),
    ],
)
def test_each_verdict_comes_from_the_logits_made_for_it(row, verdict, digit, alternative):
    (answer,) = answers(row, Calibration(), THRESHOLDS)
    assert (answer.verdict, answer.digit, answer.alternative) == (verdict, digit, alternative)


def test_json_fields_follow_the_contract():
    rows = np.concatenate(
        [logits({7: 10.0}, -5.0), logits({4: 5.0, 9: 4.9}, -5.0), logits({3: 2.0}, 10.0)]
    )
    for answer in answers(rows, Calibration(), THRESHOLDS):
        fields = json.loads(json.dumps(answer.fields()))
        assert fields["verdict"] in (DIGIT, UNSURE, NOT_A_DIGIT)
        assert len(fields["probs"]) == 10
        assert sum(fields["probs"]) == pytest.approx(1.0, abs=1e-5)
        assert 0 <= fields["not_digit"] <= 1
        if fields["verdict"] == NOT_A_DIGIT:
            assert fields["digit"] is None
            assert fields["confidence"] == fields["not_digit"]
        else:
            assert isinstance(fields["digit"], int)
            assert fields["confidence"] == max(fields["probs"])
        assert ("alternative" in fields) == (fields["verdict"] == UNSURE)


def test_temperature_softens_the_confidence_but_keeps_the_digit():
    row = logits({2: 6.0, 5: 3.0})
    (sharp,) = answers(row, Calibration(temperature=1.0), Thresholds())
    (soft,) = answers(row, Calibration(temperature=3.0), Thresholds())
    assert soft.digit == sharp.digit == 2
    assert soft.confidence < sharp.confidence


def test_a_network_without_the_eleventh_output_never_rejects():
    (answer,) = answers(
        logits({1: 0.1, 2: 0.0}), Calibration(), Thresholds(not_digit=0.0, unsure=0.0)
    )
    assert answer.verdict == DIGIT
    assert answer.not_digit is None
    assert "not_digit" not in answer.fields()


def test_the_scorer_normalizes_pixels_with_the_checkpoints_statistics():
    seen = []

    class Spy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x)
            return torch.zeros(len(x), 10)

    Scorer(Spy(), 0.1307, 0.3081, 1.0, not_digit=False)(torch.ones(1, 1, 28, 28))
    assert seen[0].shape == (1, 1, 28, 28)
    assert float(seen[0].max()) == pytest.approx((1 - 0.1307) / 0.3081)
