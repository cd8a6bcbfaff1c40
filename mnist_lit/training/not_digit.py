"""What teaches and fits "not a digit", behind one seam that the LightningModule calls: negatives
mixed into each training batch as the 11th class; a shape critic (models.ShapeCritic) trained beside
the network on digits, those negatives and digits broken near their shape; the rejection threshold
and the digits' feature statistics fitted at every validation; and the share of test digits
accepted.

Try it: python train.py trainer.fast_dev_run=true   (model.negatives=0 leaves all of it out)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import CatMetric, MeanMetric

from mnist_lit.data.batches import unnormalize
from mnist_lit.data.synthetic import ink
from mnist_lit.data.synthetic.broken_digits import broken_digits
from mnist_lit.models import ShapeCritic, feature_distance, not_digit_log_odds
from mnist_lit.training.calibration import calibrate, fit_distance
from mnist_lit.training.negative_mixer import Augment, Batch, NegativeMixer

# validation negatives per forward pass
EVAL_CHUNK = 512
# the critic's broken digits per step, as a share of the step's digits
BROKEN_SHARE = 0.125


class NotDigitTraining(nn.Module):
    """Negatives for training, the shape critic, and the fit and measure of rejecting them; an
    nn.Module so that the critic trains with the network and its metrics move to the model's device
    and synchronize across DDP ranks."""

    def __init__(
        self,
        share: float,
        mean: float,
        std: float,
        augment: Augment | None = None,
        shape_critic: bool = True,
    ) -> None:
        super().__init__()
        self.mean, self.std = mean, std
        self.mixer = NegativeMixer(share, mean, std, augment)
        self.critic: ShapeCritic | None = None
        if shape_critic:
            # its own random numbers: the classifier trains exactly as it would without a critic
            with torch.random.fork_rng(devices=[]):
                self.critic = ShapeCritic()
        # made on first use, seeded from the run's seed
        self.generator: torch.Generator | None = None
        # the validation digits' last hidden layer (N, F) and critic log-odds (N,)
        self.val_features = CatMetric(nan_strategy="disable")
        self.val_critic = CatMetric(nan_strategy="disable")
        # the share of test digits not rejected as "not a digit"
        self.test_accept = MeanMetric()

    def mix_batch(self, batch: Batch) -> tuple[Batch, torch.Tensor]:
        """The training batch with its share of digits given up, and the negatives (K, 1, 28,
        28)."""
        return self.mixer.mix_batch(batch)

    def critic_loss(self, batch: Batch, negatives: torch.Tensor) -> torch.Tensor:
        """The critic's binary cross-entropy on a mixed batch's digits (label 0), its negatives and
        digits broken near their shape (label 1); 0 without a critic. The broken digits draw on the
        critic's own generator alone, so the classifier's batches stay as they were."""
        x, y = batch
        if self.critic is None:
            return x.new_zeros(())
        if self.generator is None:
            self.generator = torch.Generator().manual_seed(torch.initial_seed())
        count = max(1, round(BROKEN_SHARE * len(x)))
        # the batch's last digits are its own (the first are restroked or typed: NegativeMixer)
        lifted = ink.lift(unnormalize(x[-count:], self.mean, self.std).float())
        broken = ink.fit_field(broken_digits(lifted, y[-count:], count, self.generator))
        broken = (broken - self.mean) / self.std
        pictures = torch.cat([x, negatives, broken.to(x.dtype)])
        target = torch.cat([x.new_zeros(len(x)), x.new_ones(len(negatives) + len(broken))])
        return F.binary_cross_entropy_with_logits(self.critic(pictures).float(), target.float())

    def start_validation(self) -> None:
        """Forget what an earlier validation (or the sanity check) gathered."""
        self.val_features.reset()
        self.val_critic.reset()

    def update_validation(self, x: torch.Tensor, hidden: torch.Tensor) -> None:
        """Gather the validation digits' (B, 1, 28, 28) last hidden layer (B, F) and critic
        log-odds."""
        self.val_features.update(hidden.float())
        if self.critic is not None:
            self.val_critic.update(self.critic(x).float())

    def fit(
        self, net: nn.Module, logits: torch.Tensor, labels: torch.Tensor
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The calibration fitted to a validation's digit logits (N, 11) and labels (N,): the
        digits' feature statistics first, then the threshold on every signal together, with the
        validation negatives run through `net` and the critic; and what to log."""
        fitted: dict[str, Any] = {}
        features = self.val_features.compute()
        distance = fit_distance(features, labels)
        if distance:
            fitted["distance"] = distance
        critic = self.val_critic.compute() if self.critic is not None else None
        digit_scores = self.probability(logits, features, critic, fitted)
        made = self.mixer.validation_negatives(logits.device)
        negative_scores = torch.cat(
            [self.no_digit(net, chunk, fitted) for chunk in made.split(EVAL_CHUNK)]
        )
        calibrated, logged = calibrate(logits, labels, digit_scores, negative_scores)
        if distance:
            logged["val/distance_limit"] = distance["limit"]
        return {**fitted, **calibrated}, logged

    def probability(
        self,
        logits: torch.Tensor,
        hidden: torch.Tensor,
        critic: torch.Tensor | None,
        calibration: dict[str, Any],
    ) -> torch.Tensor:
        """(B,) the probability of no digit, as predict.py computes it, from the network's logits
        (B, 11) and last hidden layer (B, F), and the critic's log-odds (B,): the feature distance
        counts once it has been fitted."""
        fitted = calibration.get("distance")
        distance, limit = None, 1.0
        if fitted:
            means, precision = fitted["means"].to(hidden), fitted["precision"].to(hidden)
            distance, limit = feature_distance(hidden.float(), means, precision), fitted["limit"]
        return torch.sigmoid(not_digit_log_odds(logits, distance, limit, critic))

    def no_digit(
        self, net: nn.Module, x: torch.Tensor, calibration: dict[str, Any]
    ) -> torch.Tensor:
        """(B,) the probability that each normalized picture (B, 1, 28, 28) holds no digit."""
        hidden = net.embed(x)
        critic = self.critic(x) if self.critic is not None else None
        return self.probability(net.head(hidden), hidden, critic, calibration)

    def start_test(self) -> None:
        """Forget an earlier test's count."""
        self.test_accept.reset()

    def update_test(
        self,
        x: torch.Tensor,
        logits: torch.Tensor,
        hidden: torch.Tensor,
        calibration: dict[str, Any],
    ) -> None:
        """Count the test digits (B, 1, 28, 28; their logits B, 11 and features B, F) that the
        threshold accepts."""
        # the threshold is chosen at validation: none with trainer.limit_val_batches=0
        if "not_digit" not in calibration:
            return
        critic = self.critic(x) if self.critic is not None else None
        accepted = self.probability(logits, hidden, critic, calibration) <= calibration["not_digit"]
        self.test_accept.update(accepted.float())

    def test_metrics(self, calibration: dict[str, Any]) -> dict[str, torch.Tensor]:
        """What a test logs: the share of test digits accepted, once a threshold is chosen."""
        if "not_digit" not in calibration:
            return {}
        return {"test/accept": self.test_accept.compute()}
