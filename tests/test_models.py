"""The nn.Modules and how they are rebuilt from settings.  Run: pytest tests/test_models.py"""

from __future__ import annotations

import pytest
import torch

from mnist_lit import MnistLitError
from mnist_lit.models import ARCHS, CNN, build_net, net_settings


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
