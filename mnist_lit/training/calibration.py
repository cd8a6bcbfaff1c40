"""Honest confidences: temperature scaling fitted on the validation split, the "not a digit"
threshold chosen there, the digits' feature statistics that tell how far a picture lies from every
digit, and the reliability diagram's bins.

Try it: pytest tests/training/test_calibration.py

Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks") divides the logits
by one number T > 0, fitted by minimizing the negative log-likelihood of held-out labels: T > 1
softens an overconfident network, T < 1 sharpens a timid one. It never changes which digit wins, so
accuracy is untouched.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from mnist_lit import NUM_CLASSES
from mnist_lit.models import feature_distance

# one parameter, a convex objective in log T: LBFGS converges in a handful
LBFGS_STEPS = 50
# T stays within [e^-5, e^5]; a fit that runs off is a degenerate validation set
LOG_T_BOUND = 5.0
# of the validation digits, accepted as digits by the chosen "not a digit" threshold
ACCEPT_SHARE = 0.997
# of the held half of the validation digits, within the chosen feature distance
DISTANCE_ACCEPT = 0.997
# the validation digits' halves (fit, held) are the same at every validation
SPLIT_SEED = 0
# the digits' covariance is shrunk towards its mean variance by this share: a stable inverse
SHRINK = 1e-3
RELIABILITY_BINS = 15


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T that minimizes the NLL of softmax(logits / T) for (N, C) logits and (N,) labels."""
    if len(labels) == 0:
        return 1.0
    # called from validation hooks, under Lightning's inference mode: its tensors must be copied out
    # of it
    with torch.inference_mode(False), torch.enable_grad():
        logits, labels = logits.detach().float().cpu().clone(), labels.detach().cpu().long().clone()
        # T = exp(log_t) stays positive without a constraint
        log_t = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [log_t], lr=0.5, max_iter=LBFGS_STEPS, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(logits / log_t.exp(), labels)
            loss.backward()
            return loss

        optimizer.step(closure)
    return float(log_t.detach().clamp(-LOG_T_BOUND, LOG_T_BOUND).exp())


def choose_threshold(digit_scores: torch.Tensor, accept: float = ACCEPT_SHARE) -> float:
    """The "not a digit" probability above which a picture is rejected: the lowest that still
    accepts `accept` of the validation digits. Every stricter threshold would reject more
    non-digits, and more real digits with them; pictures people send are less like MNIST than its
    validation split, so the share is set high."""
    if len(digit_scores) == 0:
        return 0.5
    return float(torch.quantile(digit_scores.float().cpu(), accept, interpolation="higher"))


def fit_distance(
    features: torch.Tensor, labels: torch.Tensor, accept: float = DISTANCE_ACCEPT
) -> dict[str, Any]:
    """The digits' feature statistics for models.feature_distance, from validation digits' features
    (N, F) and labels (N,): class means and shared precision fitted on one half, and the distance
    `limit` that `accept` of the other half lies within. Nothing here is learned from non-digits.
    Empty when a class has no digits."""
    features, labels = features.detach().double().cpu(), labels.detach().cpu().long()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
    fit = torch.zeros(len(labels), dtype=torch.bool)
    held = torch.zeros(len(labels), dtype=torch.bool)
    fit[order[: len(order) // 2]] = True
    held[order[len(order) // 2 :]] = True
    if any(int((labels[fit] == c).sum()) == 0 for c in range(NUM_CLASSES)) or not held.any():
        return {}
    means = torch.stack([features[fit & (labels == c)].mean(dim=0) for c in range(NUM_CLASSES)])
    centred = features[fit] - means[labels[fit]]
    covariance = centred.T @ centred / len(centred)
    covariance += (
        SHRINK * covariance.diagonal().mean() * torch.eye(len(covariance), dtype=covariance.dtype)
    )
    precision = torch.linalg.inv(covariance)
    distance = feature_distance(features[held], means, precision)
    limit = float(torch.quantile(distance, accept, interpolation="higher"))
    return {"means": means.float(), "precision": precision.float(), "limit": limit}


def calibrate(
    logits: torch.Tensor,
    labels: torch.Tensor,
    digit_scores: torch.Tensor | None = None,
    negative_scores: torch.Tensor | None = None,
) -> tuple[dict[str, Any], dict[str, torch.Tensor | float]]:
    """What a validation fits, and what it logs: the temperature, fitted to the validation digits'
    logits (N, 10 or 11) and labels (N,); with the digits' "not a digit" probabilities (N,) and
    those of generated validation negatives (M,), the rejection threshold chosen on the digits, and
    the shares of digits it accepts and of negatives it rejects."""
    temperature = fit_temperature(logits[:, :NUM_CLASSES], labels)
    fitted, logged = {"temperature": temperature}, {"val/temperature": temperature}
    if digit_scores is None or negative_scores is None:
        return fitted, logged
    fitted["not_digit"] = choose_threshold(digit_scores)
    logged["val/accept"] = (digit_scores <= fitted["not_digit"]).float().mean()
    logged["val/reject"] = (negative_scores > fitted["not_digit"]).float().mean()
    return fitted, logged


def reliability(
    confidences: torch.Tensor, correct: torch.Tensor, bins: int = RELIABILITY_BINS
) -> list[dict]:
    """Per equal-width confidence bin (as torchmetrics' calibration error bins them): its count,
    mean confidence and accuracy; empty bins are left out."""
    confidences, correct = confidences.float().cpu(), correct.float().cpu()
    # (lo, hi] bins, as torchmetrics
    index = torch.clamp((confidences * bins).ceil().long() - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        if count:
            rows.append(
                {
                    "bin": (b / bins, (b + 1) / bins),
                    "count": count,
                    "confidence": float(confidences[mask].mean()),
                    "accuracy": float(correct[mask].mean()),
                }
            )
    return rows
