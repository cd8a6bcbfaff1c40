"""The fast data path's augmentation, performance settings and presets.  Run: pytest
tests/training/test_perf.py"""

from __future__ import annotations

import pytest
import torch

from mnist_lit.data.batches import RandomAffine, TensorBatches, warp
from mnist_lit.data.datamodule import MNISTDataModule
from mnist_lit.training.perf import (
    NVML_CUDA_CHECK,
    keep_freed_memory,
    plain_cuda_check_without_gpu,
    resolve_precision,
)
from mnist_lit.training.run import train
from tests.conftest import N_TRAIN, N_VAL, make_digits


def test_affine_identity_and_motion():
    x = torch.from_numpy(make_digits(8, seed=0)[0]).float().div(255).unsqueeze(1)
    still = RandomAffine(0.0, 0.0, 0.0)(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(still, x, atol=1e-5, rtol=0)
    moved = RandomAffine(15.0, 0.1, 0.1)(x, torch.Generator().manual_seed(0))
    assert moved.shape == x.shape
    assert (moved - x).abs().mean() > 0.01
    # what moves in from outside is black
    assert moved.min() >= 0.0
    assert moved.max() <= 1.0 + 1e-6


def test_augmentation_only_on_training_batches(synthetic_root):
    dm = MNISTDataModule(root=str(synthetic_root), val_size=N_VAL, augment=True, batch_size=1000)
    dm.setup("fit")
    plain = MNISTDataModule(root=str(synthetic_root), val_size=N_VAL, batch_size=1000)
    plain.setup("fit")
    (xv, _), (pv, _) = next(iter(dm.val_dataloader())), next(iter(plain.val_dataloader()))
    assert torch.equal(xv, pv)
    train_loader = dm.train_dataloader()
    assert isinstance(train_loader, TensorBatches)
    assert train_loader.augment is not None


def test_auto_precision_is_fp32_on_cpu():
    assert resolve_precision("32-true", "cpu") == "32-true"
    assert resolve_precision("auto", "cpu") == "32-true"
    if not torch.cuda.is_available():
        assert resolve_precision("auto", "auto") == resolve_precision("auto", "cpu")


def test_precision_auto_bf16_only_where_the_cpu_has_it(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert resolve_precision("auto-bf16", "cpu") == "bf16-mixed"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    # emulated bf16 would be slower than fp32
    assert resolve_precision("auto-bf16", "cpu") == "32-true"


def test_keep_freed_memory_on_glibc():
    import platform

    if platform.libc_ver()[0] != "glibc":
        assert keep_freed_memory() is False
    else:
        assert keep_freed_memory() is True


@pytest.mark.parametrize(
    ("setting", "gpu", "after"), [("1", False, None), ("1", True, "1"), (None, False, None)]
)
def test_nvml_cuda_check_is_dropped_only_without_a_gpu(monkeypatch, setting, gpu, after):
    import os

    if setting is None:
        monkeypatch.delenv(NVML_CUDA_CHECK, raising=False)
    else:
        monkeypatch.setenv(NVML_CUDA_CHECK, setting)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    assert plain_cuda_check_without_gpu() is (setting is not None and not gpu)
    assert os.environ.get(NVML_CUDA_CHECK) == after


@pytest.mark.parametrize("experiment", ["speedrun", "best"])
def test_presets_run_one_batch_of_each_stage(make_cfg, experiment):
    metrics = train(make_cfg(f"experiment={experiment}", "trainer.fast_dev_run=true"))
    assert 0.0 <= metrics["test/acc"] <= 1.0


def test_one_cycle_spans_the_whole_run(make_cfg, tmp_path):
    cfg = make_cfg("experiment=speedrun", "trainer.max_epochs=2", "data.batch_size=32")
    train(cfg)
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    (scheduler,) = ckpt["lr_schedulers"]
    steps_per_epoch = -(-(N_TRAIN - N_VAL) // 32)
    assert scheduler["total_steps"] == 2 * steps_per_epoch
    # stepped every batch, not every epoch
    assert scheduler["last_epoch"] == 2 * steps_per_epoch


def test_channels_last_keeps_checkpoints_loadable(make_cfg):
    from mnist_lit.training.module import MNISTLitModule

    metrics = train(make_cfg("trainer.max_epochs=1", "perf.channels_last=true"))
    module = MNISTLitModule.load_from_checkpoint(metrics["best_ckpt"], map_location="cpu")
    assert set(module.state_dict()) == set(
        torch.load(metrics["best_ckpt"], weights_only=True)["state_dict"]
    )


def test_in_place_compile_keeps_state_dict_keys():
    from mnist_lit.models import build_net

    net = build_net("cnn")
    keys = list(net.state_dict())
    # what perf.compile=true does; compiling happens lazily, at the first forward
    net.compile()
    assert list(net.state_dict()) == keys


@pytest.mark.parametrize(
    ("degrees", "zoom", "shift_px"), [(10.0, 1.0, (0, 0)), (-7.0, 1.1, (0, 0)), (0.0, 1.0, (2, -3))]
)
def test_torchvision_augmentation_warps_exactly_like_the_fast_path(degrees, zoom, shift_px):
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as tvf

    x = torch.from_numpy(make_digits(4, seed=0)[0]).float().div(255).unsqueeze(1)
    per_sample = [
        torch.full((4,), float(v)) for v in (degrees, zoom, shift_px[0] / 28, shift_px[1] / 28)
    ]
    fast = warp(x, *per_sample)
    tv = tvf.affine(
        x,
        angle=-degrees,
        translate=[-shift_px[0], -shift_px[1]],
        scale=zoom,
        shear=[0.0, 0.0],
        interpolation=RandomAffine().torchvision().interpolation,
    )
    torch.testing.assert_close(fast, tv, atol=1e-5, rtol=0)
    assert RandomAffine().torchvision().interpolation == InterpolationMode.BILINEAR
