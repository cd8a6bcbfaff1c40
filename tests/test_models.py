"""The nn.Modules and how they are rebuilt from settings.  Run: pytest tests/test_models.py"""

from __future__ import annotations

import pytest
import torch

from mnist_lit import MnistLitError, checkpoints
from mnist_lit.inference.torch_model import Scorer
from mnist_lit.models import (
    ARCHS,
    CNN,
    ShapeCritic,
    build_net,
    feature_distance,
    net_settings,
    not_digit_log_odds,
    rebuild_critic,
)


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("batchnorm", [False, True])
def test_networks_give_ten_logits_per_image(arch, batchnorm):
    net = build_net(arch, batchnorm=batchnorm).eval()
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_cnn_matches_the_reference_layout():
    net = CNN()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [c.out_channels for c in convs] == [32, 64]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert [(lin.in_features, lin.out_features) for lin in linears] == [
        (64 * 7 * 7, 128),
        (128, 10),
    ]
    dropout = next(m for m in net.modules() if isinstance(m, torch.nn.Dropout))
    assert dropout.p == 0.25


def test_widths_and_dropout_override():
    net = build_net("cnn", conv1=8, conv2=16, fc=32, dropout=0.5)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert linears[0].in_features == 16 * 7 * 7
    assert linears[0].out_features == 32


def test_deep_cnn_has_its_reference_widths():
    net = build_net("deep_cnn")
    convs = [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert convs == [32, 64, 128, 256]
    assert linears == [4096, 50, 10]


def test_net_settings_picks_constructor_args():
    hparams = {"arch": "cnn", "conv1": 8, "lr": 0.1, "optimizer": None, "mean": 0.5}
    assert net_settings("cnn", hparams) == {"conv1": 8}


@pytest.mark.parametrize(
    ("arch", "settings", "message"),
    [
        ("resnet", {}, "unknown model arch"),
        ("cnn", {"widht": 3}, "no setting"),
    ],
)
def test_unknown_arch_or_setting_is_refused(arch, settings, message):
    with pytest.raises(MnistLitError, match=message):
        build_net(arch, **settings)


def test_the_shape_critic_gives_one_log_odds_per_image():
    critic = ShapeCritic().eval()
    assert critic(torch.zeros(5, 1, 28, 28)).shape == (5,)


def test_the_scorer_adds_the_shape_critics_log_odds_to_the_networks(tiny):
    ckpt = checkpoints.read(tiny.ckpt)
    scorer = Scorer.of(ckpt)
    critic = rebuild_critic(ckpt)
    assert critic is not None
    pixels = torch.rand(6, 1, 28, 28)
    x = (pixels - scorer.mean) / scorer.std
    with torch.no_grad():
        hidden = scorer.net.embed(x)
        distance = feature_distance(hidden, scorer.means, scorer.precision)
        without = not_digit_log_odds(scorer.net.head(hidden), distance, scorer.limit)
        expected = torch.sigmoid(without + critic(x))
        torch.testing.assert_close(scorer(pixels)[1], expected)
    # a checkpoint from before the critic has none, and answers from the other two signals
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    assert rebuild_critic(ckpt) is None
    with torch.no_grad():
        torch.testing.assert_close(Scorer.of(ckpt)(pixels)[1], torch.sigmoid(without))
