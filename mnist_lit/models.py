"""The networks, as plain nn.Modules that a checkpoint can rebuild from their settings alone, and
what their outputs mean. Training and inference both build them here; torch, no Lightning.

Try it: pytest tests/test_models.py
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from mnist_lit import NUM_CLASSES, MnistLitError, first_line

# keeps a distance of 0 out of the logarithm
DISTANCE_FLOOR = 1e-6


def _conv(c_in: int, c_out: int, batchnorm: bool, pool: bool = False) -> list[nn.Module]:
    # 3x3 with padding 1 keeps the spatial size; BatchNorm makes the conv bias redundant
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(c_out))
    if pool:
        # max-pool before ReLU: the same function (ReLU is monotonic), on a quarter of the elements
        layers.append(nn.MaxPool2d(2))
    layers.append(nn.ReLU(inplace=True))
    return layers


def _stage(c_in: int, c_out: int, depth: int, batchnorm: bool) -> list[nn.Module]:
    """`depth` 3x3 convs, then a 2x2 max-pool that halves the spatial size."""
    return [
        m
        for i in range(depth)
        for m in _conv(c_out if i else c_in, c_out, batchnorm, pool=i == depth - 1)
    ]


def _classifier(
    features: int, hidden: tuple[int, ...], dropout: float, not_digit: bool
) -> nn.Sequential:
    """Flatten, then one Linear-ReLU-Dropout per hidden width, then the 10 digit logits (and, with
    `not_digit`, an 11th: "this is not a digit")."""
    layers: list[nn.Module] = [nn.Flatten()]
    for width_in, width in zip((features, *hidden), hidden):
        layers += [nn.Linear(width_in, width), nn.ReLU(inplace=True), nn.Dropout(dropout)]
    return nn.Sequential(*layers, nn.Linear(hidden[-1], NUM_CLASSES + not_digit))


class _ConvNet(nn.Module):
    """Convolutional `features`, then a `classifier` head; the subclasses build the two."""

    features: nn.Sequential
    classifier: nn.Sequential

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, 10), or (B, 11) with the not-a-digit output, for images (B, 1, 28, 28)."""
        return self.head(self.embed(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer (B, F) for images (B, 1, 28, 28): what the output layer reads the
        digit from."""
        return self.classifier[:-1](self.features(x))

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """The logits of the last hidden layer (B, F), as forward gives them."""
        return self.classifier[-1](hidden)


class CNN(_ConvNet):
    """The reference CNN: conv32 -> pool -> conv64 -> pool -> fc128 -> dropout -> fc10.
    depth=2 doubles each conv (conv-conv-pool, VGG style) for more capacity at 4x the compute."""

    def __init__(
        self,
        conv1: int = 32,
        conv2: int = 64,
        fc: int = 128,
        dropout: float = 0.25,
        batchnorm: bool = False,
        depth: int = 1,
        not_digit: bool = False,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            # (B, 1, 28, 28) -> (B, conv1, 14, 14)
            *_stage(1, conv1, depth, batchnorm),
            # -> (B, conv2, 7, 7)
            *_stage(conv1, conv2, depth, batchnorm),
        )
        # (B, conv2 * 49) -> (B, 10)
        self.classifier = _classifier(conv2 * 7 * 7, (fc,), dropout, not_digit)


class DeepCNN(_ConvNet):
    """The larger reference net: conv 32-64-128-256 with three poolings, then fc 4096 -> fc 50 ->
    10."""

    def __init__(
        self,
        channels: tuple[int, ...] = (32, 64, 128, 256),
        fc1: int = 4096,
        fc2: int = 50,
        dropout: float = 0.25,
        batchnorm: bool = False,
        not_digit: bool = False,
    ) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels
        self.features = nn.Sequential(
            # (B, c1, 28, 28): no pooling yet, 28 -> 3 takes only three halvings
            *_conv(1, c1, batchnorm),
            # -> (B, c2, 14, 14)
            *_conv(c1, c2, batchnorm, pool=True),
            # -> (B, c3, 7, 7)
            *_conv(c2, c3, batchnorm, pool=True),
            # -> (B, c4, 3, 3), floor of 7 / 2
            *_conv(c3, c4, batchnorm, pool=True),
        )
        # (B, c4 * 9) -> (B, 10)
        self.classifier = _classifier(c4 * 3 * 3, (fc1, fc2), dropout, not_digit)


ARCHS: dict[str, type[nn.Module]] = {"cnn": CNN, "deep_cnn": DeepCNN}


class ShapeCritic(nn.Module):
    """A second, smaller network that answers one question, "is this shape a digit?", with its own
    features: conv16 -> pool -> conv32 -> pool -> fc64 -> one logit. It learns from digits and
    from digits broken near their shape (data/synthetic/broken_digits.py), which the classifier
    never sees, so it judges what the classifier's features, trained to tell digits apart, leave
    out."""

    def __init__(self, conv1: int = 16, conv2: int = 32, fc: int = 64) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            # (B, 1, 28, 28) -> (B, conv1, 14, 14) -> (B, conv2, 7, 7)
            *_conv(1, conv1, False, pool=True),
            *_conv(conv1, conv2, False, pool=True),
            nn.Flatten(),
            nn.Linear(conv2 * 7 * 7, fc),
            nn.ReLU(inplace=True),
            nn.Linear(fc, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B,) the log-odds that each normalized image (B, 1, 28, 28) is no digit."""
        return self.layers(x)[:, 0]


# the critic's weights in a checkpoint's state_dict (the LightningModule's not_digit.critic)
CRITIC_PREFIX = "not_digit.critic."


def net_settings(arch: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of `settings` that the constructor of `arch` takes (e.g. from a checkpoint's
    hyperparameters)."""
    if arch not in ARCHS:
        raise MnistLitError(f"unknown model arch {arch!r}; choose one of {sorted(ARCHS)}")
    params = inspect.signature(ARCHS[arch]).parameters
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in settings.items() if k in params}


def build_net(arch: str, **settings: Any) -> nn.Module:
    """Construct the network `arch` (a key of ARCHS) with the given settings (their ranges:
    mnist_lit.schema)."""
    kwargs = net_settings(arch, settings)
    unknown = set(settings) - set(kwargs)
    if unknown:
        raise MnistLitError(f"model arch {arch!r} has no setting(s) {sorted(unknown)}")
    return ARCHS[arch](**kwargs)


def rebuild(ckpt: dict[str, Any], path: str | os.PathLike = "checkpoint") -> nn.Module:
    """The plain nn.Module rebuilt from a checkpoint's stored settings and weights
    (checkpoints.read), in eval mode."""
    hp = ckpt["hyper_parameters"]
    try:
        net = build_net(hp["arch"], **net_settings(hp["arch"], hp))
        net.load_state_dict(
            {
                k.removeprefix("net."): v
                for k, v in ckpt["state_dict"].items()
                if k.startswith("net.")
            }
        )
    except (MnistLitError, RuntimeError, TypeError) as err:
        raise MnistLitError(
            f"{path} does not hold an mnist-lit network: {first_line(err)}"
        ) from None
    return net.eval()


def rebuild_critic(ckpt: dict[str, Any]) -> ShapeCritic | None:
    """The shape critic of a checkpoint (checkpoints.read), in eval mode; None in one without it."""
    weights = {
        k.removeprefix(CRITIC_PREFIX): v
        for k, v in ckpt["state_dict"].items()
        if k.startswith(CRITIC_PREFIX)
    }
    if not weights:
        return None
    critic = ShapeCritic()
    critic.load_state_dict(weights)
    return critic.eval()


def feature_distance(
    features: torch.Tensor, means: torch.Tensor, precision: torch.Tensor
) -> torch.Tensor:
    """(N,) squared Mahalanobis distance of each of (N, F) features to the nearest of the digits'
    class means (10, F), under their shared precision (F, F): how far a picture lies from every
    digit the network has seen."""
    # (N, F)
    projected = features @ precision
    # |f - m|^2_P = f P f - 2 f P m + m P m, for every class at once: (N, 10)
    own = (projected * features).sum(dim=1, keepdim=True)
    across = projected @ means.T
    centres = ((means @ precision) * means).sum(dim=1)
    return (own - 2 * across + centres).amin(dim=1).clamp(min=0)


def not_digit_log_odds(
    logits: torch.Tensor,
    distance: torch.Tensor | None = None,
    limit: float = 1.0,
    critic: torch.Tensor | None = None,
) -> torch.Tensor:
    """(N,) the log-odds that each picture holds no digit: the 11th output's against the ten digits'
    (from (N, 11) logits), plus log(distance / limit) where the feature distance is given, plus the
    shape critic's log-odds (N,) where given. Each signal multiplies the odds, so the sum stays one
    monotone score that a single threshold cuts, and no signal can veto the others."""
    logits = logits.float()
    odds = logits[:, NUM_CLASSES] - torch.logsumexp(logits[:, :NUM_CLASSES], dim=1)
    if distance is not None:
        odds = odds + torch.log(distance.float().clamp(min=DISTANCE_FLOOR) / limit)
    if critic is not None:
        odds = odds + critic.float()
    return odds
