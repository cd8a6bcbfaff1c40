"""Temperature scaling, the rejection threshold, the reliability bins.

Run: pytest tests/training/test_calibration.py
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mnist_lit.models import feature_distance, not_digit_log_odds
from mnist_lit.training.calibration import (
    ACCEPT_SHARE,
    DISTANCE_ACCEPT,
    calibrate,
    choose_threshold,
    fit_distance,
    fit_temperature,
    reliability,
)


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_temperature_fit_recovers_a_known_temperature(true_t):
    g = torch.Generator().manual_seed(0)
    # logits whose softmax is the truth
    calibrated = torch.randn(20000, 10, generator=g) * 3
    labels = torch.multinomial(torch.softmax(calibrated, 1), 1, generator=g).squeeze(1)
    # a network that is overconfident (T > 1) or timid (T < 1) by true_t
    assert fit_temperature(calibrated * true_t, labels) == pytest.approx(true_t, rel=0.05)


def test_threshold_accepts_the_chosen_share_of_validation_digits():
    # the probabilities of "not a digit" that 1000 digits got
    digits = torch.linspace(0.0, 0.999, 1000)
    threshold = choose_threshold(digits, accept=0.99)
    assert (digits <= threshold).float().mean() == pytest.approx(0.99, abs=0.0011)


def test_threshold_without_validation_digits_is_a_coin_flip():
    assert choose_threshold(torch.zeros(0)) == 0.5


def test_reliability_bins_count_every_prediction_once():
    confidences = torch.tensor([0.05, 0.5, 0.51, 0.99, 1.0])
    correct = torch.tensor([0, 1, 0, 1, 1])
    rows = reliability(confidences, correct, bins=10)
    assert sum(r["count"] for r in rows) == 5
    top = rows[-1]
    assert top["bin"] == (0.9, 1.0)
    assert top["count"] == 2
    assert top["accuracy"] == 1.0


def test_a_validation_fits_the_temperature_and_without_negatives_no_threshold():
    torch.manual_seed(0)
    labels = torch.randint(0, 10, (500,))
    # right, and overconfident
    logits = torch.randn(500, 10) + 8 * F.one_hot(labels, 10)
    fitted, logged = calibrate(logits, labels)
    assert set(fitted) == {"temperature"}
    assert set(logged) == {"val/temperature"}
    assert (
        fitted["temperature"]
        == logged["val/temperature"]
        == pytest.approx(fit_temperature(logits, labels))
    )


def test_a_validation_with_negatives_chooses_the_threshold_on_the_digits_and_counts_the_rejected():
    torch.manual_seed(0)
    labels = torch.randint(0, 10, (1000,))
    digits = torch.cat(
        [torch.randn(1000, 10) + 6 * F.one_hot(labels, 10), torch.full((1000, 1), -4.0)], 1
    )
    negatives = torch.cat([torch.randn(200, 10), torch.full((200, 1), 4.0)], 1)
    # a quarter look like digits to the network
    negatives[:50, 10] = -8.0
    scores = eleventh_share(digits)
    fitted, logged = calibrate(digits, labels, scores, eleventh_share(negatives))
    assert fitted["not_digit"] == choose_threshold(scores)
    assert float(logged["val/accept"]) >= ACCEPT_SHARE
    assert float(logged["val/reject"]) == pytest.approx(0.75)


def eleventh_share(logits: torch.Tensor) -> torch.Tensor:
    """(N,) the 11th output's share of the softmax of (N, 11) logits."""
    return torch.softmax(logits, dim=1)[:, 10]


def clustered(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 16) features in ten Gaussian clusters, one per digit, and their labels."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(10, 16, generator=g) * 6
    labels = torch.arange(n) % 10
    return centres[labels] + torch.randn(n, 16, generator=g), labels


def test_the_feature_distance_puts_a_far_point_beyond_its_limit_and_keeps_new_digits_within():
    features, labels = clustered(4000, 0)
    fitted = fit_distance(features, labels)
    # the same clusters, other draws: digits the fit never saw
    new, _ = clustered(2000, 0)
    within = feature_distance(new, fitted["means"], fitted["precision"]) <= fitted["limit"]
    assert within.float().mean() >= DISTANCE_ACCEPT - 0.01
    # between and beyond every cluster
    far = fitted["means"].mean(dim=0, keepdim=True) + 40.0
    assert (
        float(feature_distance(far, fitted["means"], fitted["precision"])[0]) > 10 * fitted["limit"]
    )


def test_the_log_odds_are_the_eleventh_outputs_multiplied_by_the_distance_and_critic_odds():
    logits = torch.tensor([[0.0] * 10 + [1.0]] * 4)
    alone = not_digit_log_odds(logits)
    # logit of the 11th softmax share
    p = eleventh_share(logits)
    assert alone.tolist() == pytest.approx(torch.log(p / (1 - p)).tolist(), abs=1e-5)
    distance = torch.tensor([5.0, 10.0, 20.0, 40.0])
    fused = not_digit_log_odds(logits, distance, limit=10.0)
    # at the limit the distance leaves the odds as they are; twice as far, twice the odds
    assert float(fused[1]) == pytest.approx(float(alone[1]))
    assert float(fused[2] - fused[1]) == pytest.approx(float(torch.log(torch.tensor(2.0))))
    # monotone in every signal: farther, or a critic more sure of "no digit", never lowers it
    assert bool((fused.diff() > 0).all())
    critic = torch.tensor([-3.0, 0.0, 3.0, 3.0])
    assert not_digit_log_odds(logits, distance, 10.0, critic).tolist() == pytest.approx(
        (fused + critic).tolist()
    )


def test_the_distance_is_not_fitted_when_a_digit_class_is_missing():
    features, labels = clustered(400, 1)
    assert set(fit_distance(features, labels)) == {"means", "precision", "limit"}
    # no 9 among them
    few = labels < 9
    assert fit_distance(features[few], labels[few]) == {}
