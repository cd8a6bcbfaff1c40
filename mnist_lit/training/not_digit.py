"""What teaches and fits "not a digit", behind one seam that the LightningModule calls: negatives
mixed into each training batch as the 11th class, the rejection threshold and the digits' feature
statistics fitted at every validation, and the share of test digits accepted.

Try it: python train.py trainer.fast_dev_run=true   (model.negatives=0 leaves all of it out)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchmetrics import CatMetric, MeanMetric

from mnist_lit.models import feature_distance, not_digit_probability, with_distance
from mnist_lit.training.calibration import calibrate
from mnist_lit.training.negative_mixer import Augment, Batch, NegativeMixer

# validation negatives per forward pass
EVAL_CHUNK = 512


class NotDigitTraining(nn.Module):
    """Negatives for training, and the fit and measure of rejecting them; an nn.Module so that its
    metrics move to the model's device and synchronize across DDP ranks."""

    def __init__(
        self, share: float, mean: float, std: float, augment: Augment | None = None
    ) -> None:
        super().__init__()
        self.mixer = NegativeMixer(share, mean, std, augment)
        # the validation digits' last hidden layer (N, F), for the feature distance
        self.val_features = CatMetric(nan_strategy="disable")
        # the share of test digits not rejected as "not a digit"
        self.test_accept = MeanMetric()

    def mix_batch(self, batch: Batch) -> tuple[Batch, torch.Tensor]:
        """The training batch with its share of digits given up, and the negatives (K, 1, 28,
        28)."""
        return self.mixer.mix_batch(batch)

    def start_validation(self) -> None:
        """Forget the features an earlier validation (or the sanity check) gathered."""
        self.val_features.reset()

    def update_validation(self, hidden: torch.Tensor) -> None:
        """Gather the validation digits' last hidden layer (B, F)."""
        self.val_features.update(hidden.float())

    def fit(
        self, net: nn.Module, logits: torch.Tensor, labels: torch.Tensor
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The calibration fitted to a validation's digit logits (N, 11) and labels (N,), with the
        validation negatives run through `net`; and what to log."""
        features = self.val_features.compute()
        made = self.mixer.validation_negatives(logits.device)
        negative_logits = torch.cat([net(chunk) for chunk in made.split(EVAL_CHUNK)])
        return calibrate(logits, labels, negative_logits, features)

    def no_digit(
        self, logits: torch.Tensor, hidden: torch.Tensor, calibration: dict[str, Any]
    ) -> torch.Tensor:
        """(B,) the probability of no digit, as predict.py computes it: the 11th output's, with the
        feature distance folded in once it has been fitted."""
        scores = not_digit_probability(logits)
        fitted = calibration.get("distance")
        if not fitted:
            return scores
        means, precision = fitted["means"].to(hidden), fitted["precision"].to(hidden)
        distance = feature_distance(hidden.float(), means, precision)
        return with_distance(scores, distance, fitted["limit"], calibration["not_digit"])

    def start_test(self) -> None:
        """Forget an earlier test's count."""
        self.test_accept.reset()

    def update_test(
        self, logits: torch.Tensor, hidden: torch.Tensor, calibration: dict[str, Any]
    ) -> None:
        """Count the test digits (B, 11 logits; B, F features) that the threshold accepts."""
        # the threshold is chosen at validation: none with trainer.limit_val_batches=0
        if "not_digit" not in calibration:
            return
        accepted = self.no_digit(logits, hidden, calibration) <= calibration["not_digit"]
        self.test_accept.update(accepted.float())

    def test_metrics(self, calibration: dict[str, Any]) -> dict[str, torch.Tensor]:
        """What a test logs: the share of test digits accepted, once a threshold is chosen."""
        if "not_digit" not in calibration:
            return {}
        return {"test/accept": self.test_accept.compute()}
