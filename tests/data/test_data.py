"""IDX decoding, splits, loaders and data errors, on synthetic files.  Run: pytest
tests/data/test_data.py"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnist_lit import MnistLitError
from mnist_lit.data import NORMALIZATIONS
from mnist_lit.data.batches import TensorBatches
from mnist_lit.data.datamodule import MNISTDataModule
from mnist_lit.data.idx import load_split, read_idx
from tests.conftest import N_TEST, N_TRAIN, N_VAL, make_digits, make_mnist, write_idx


def test_read_idx_gives_back_the_written_array(tmp_path):
    images, _ = make_digits(5, seed=3)
    tensor = read_idx(write_idx(tmp_path / "x-idx3-ubyte", images))
    assert tensor.dtype == torch.uint8
    assert tensor.shape == (5, 28, 28)
    assert np.array_equal(tensor.numpy(), images)


def test_read_idx_accepts_gzip(tmp_path):
    _, labels = make_digits(7, seed=3)
    path = write_idx(tmp_path / "y-idx1-ubyte", labels, gz=True)
    assert path.suffix == ".gz"
    assert read_idx(path).tolist() == labels.tolist()


def test_truncated_idx_is_a_clear_error(tmp_path):
    images, _ = make_digits(4, seed=0)
    path = write_idx(tmp_path / "t-idx3-ubyte", images)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(MnistLitError, match=r"truncated or corrupt") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_bad_header_is_a_clear_error(tmp_path):
    path = tmp_path / "junk-idx3-ubyte"
    path.write_bytes(b"<html>not found</html>")
    with pytest.raises(MnistLitError, match="not an IDX file"):
        read_idx(path)


def test_labels_out_of_range_rejected(tmp_path):
    root = make_mnist(tmp_path)
    write_idx(root / "MNIST/raw/t10k-labels-idx1-ubyte", np.full(N_TEST, 12, dtype=np.uint8))
    with pytest.raises(MnistLitError, match="label 12"):
        load_split(root, "test")


def test_missing_data_offline_names_folder_files_and_fix(tmp_path):
    dm = MNISTDataModule(root=str(tmp_path / "nowhere"), download=False)
    with pytest.raises(MnistLitError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert str((tmp_path / "nowhere/MNIST/raw").resolve()) in message
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        assert name in message
    assert "data.root=" in message
    assert "DATA_DIR" in message


def test_split_is_fixed_disjoint_and_test_is_official(synthetic_root):
    dm = MNISTDataModule(root=str(synthetic_root), val_size=N_VAL, split_seed=7)
    train_idx, val_idx = dm.split_indices(N_TRAIN)
    assert len(train_idx) == N_TRAIN - N_VAL
    assert len(val_idx) == N_VAL
    assert not set(train_idx) & set(val_idx)
    again = MNISTDataModule(root=str(synthetic_root), val_size=N_VAL, split_seed=7)
    assert (train_idx, val_idx) == again.split_indices(N_TRAIN)
    assert train_idx != MNISTDataModule(val_size=N_VAL, split_seed=8).split_indices(N_TRAIN)[0]
    dm.setup()
    # the official test file, never mixed with train
    assert len(dm.test_set[1]) == N_TEST


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
def test_evaluation_serves_every_sample_in_order(batch_size):
    images, labels = (torch.from_numpy(a) for a in make_digits(50, seed=0))
    batches = list(
        TensorBatches(images=images, labels=labels.long(), batch_size=batch_size, mean=0.0, std=1.0)
    )
    assert len(batches) == -(-50 // batch_size)
    assert torch.equal(torch.cat([y for _, y in batches]), labels.long())


def test_shuffled_batches_cover_every_sample_once():
    images, labels = (torch.from_numpy(a) for a in make_digits(50, seed=0))
    ids = torch.arange(50)
    generator = torch.Generator().manual_seed(0)
    batches = TensorBatches(
        images=images,
        labels=ids,
        batch_size=8,
        mean=0.0,
        std=1.0,
        shuffle=True,
        generator=generator,
    )
    served = torch.cat([y for _, y in batches])
    assert sorted(served.tolist()) == list(range(50))
    assert served.tolist() != list(range(50))


@pytest.mark.parametrize("normalize", sorted(NORMALIZATIONS))
def test_fast_path_matches_torchvision_path(synthetic_root, normalize):
    common = {
        "root": str(synthetic_root),
        "val_size": N_VAL,
        "normalize": normalize,
        "batch_size": 50,
    }
    fast, tv = MNISTDataModule(**common), MNISTDataModule(loader="torchvision", **common)
    fast.setup()
    tv.setup()
    for name in ("val_dataloader", "test_dataloader"):
        fast_batches, tv_batches = list(getattr(fast, name)()), list(getattr(tv, name)())
        assert len(fast_batches) == len(tv_batches)
        for (xf, yf), (xt, yt) in zip(fast_batches, tv_batches):
            assert xf.shape == xt.shape
            assert xf.dtype == xt.dtype == torch.float32
            torch.testing.assert_close(xf, xt, rtol=0, atol=1e-6)
            assert torch.equal(yf, yt)


def test_pm1_scaling_spans_minus_one_to_one(synthetic_root):
    dm = MNISTDataModule(
        root=str(synthetic_root), val_size=N_VAL, normalize="pm1", batch_size=N_TEST
    )
    dm.setup("test")
    x, _ = next(iter(dm.test_dataloader()))
    assert x.min().item() >= -1.0
    # the synthetic bars are pure white
    assert x.max().item() == pytest.approx(1.0)
