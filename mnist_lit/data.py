"""MNIST as a LightningDataModule, decoded once from the raw IDX files.

Try it: pytest tests/test_data.py
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import multiprocessing as mp
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset, random_split

from mnist_lit import MnistLitError

# torchvision's layout: <root>/MNIST/raw/<file>; a .gz sibling is accepted too.
RAW_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
LOADERS = ("fast", "torchvision")
IMAGE_SIZE = 28
NUM_CLASSES = 10
IDX_UBYTE = 0x08
# name -> (mean, std) applied after scaling pixels to [0, 1]
NORMALIZATIONS = {
    "mnist": (0.1307, 0.3081),  # the training set's own statistics
    "pm1": (0.5, 0.5),  # the seeds' scaling to [-1, 1]
}
DOWNLOAD_TIMEOUT_S = 10


def raw_dir(root: str | os.PathLike) -> Path:
    """Folder where torchvision keeps MNIST's raw IDX files under `root`."""
    return Path(root).expanduser() / "MNIST" / "raw"


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def missing_files(root: str | os.PathLike) -> list[str]:
    """Names of the four IDX files that are not under `root` (plain or .gz)."""
    folder = raw_dir(root)
    return [name for pair in RAW_FILES.values() for name in pair if _find(folder, name) is None]


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Decode one IDX file of unsigned bytes into a uint8 tensor, checking its header against its size."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise MnistLitError(f"cannot read IDX file {path}: {err}") from err
    # header: 2 zero bytes, a dtype byte, ndim, then ndim big-endian int32 sizes
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != IDX_UBYTE or not 1 <= data[3] <= 3:
        raise MnistLitError(f"{path} is not an IDX file of unsigned bytes (bad header); re-download it")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MnistLitError(f"{path} is truncated inside its header; re-download it")
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + math.prod(shape)
    if len(data) != expected:
        raise MnistLitError(
            f"{path} holds {len(data) - header} data bytes but its header {tuple(shape)} says "
            f"{expected - header}: the file is truncated or corrupt; re-download it"
        )
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=header).view(*shape)


def load_split(root: str | os.PathLike, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of the official `train` or `test` split."""
    folder = raw_dir(root)
    paths = []
    for name in RAW_FILES[split]:
        path = _find(folder, name)
        if path is None:
            raise MnistLitError(_missing_message(root))
        paths.append(path)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise MnistLitError(f"{paths[0]} holds images of shape {tuple(images.shape[1:])}, expected 28x28")
    if labels.ndim != 1 or len(labels) != len(images):
        raise MnistLitError(f"{paths[1]} holds {len(labels)} labels for {len(images)} images in {paths[0]}")
    if len(labels) and int(labels.max()) >= NUM_CLASSES:
        raise MnistLitError(f"{paths[1]} holds label {int(labels.max())}; MNIST labels are 0-9")
    return images, labels.long()


def _missing_message(root: str | os.PathLike, reason: str = "") -> str:
    expected = ", ".join(name for pair in RAW_FILES.values() for name in pair)
    why = f" and downloading failed ({reason})" if reason else ""
    return (
        f"MNIST not found in {raw_dir(root).resolve()}{why}. Expected the four IDX files {expected} there "
        "(plain or .gz). Point data.root=DIR or DATA_DIR=DIR at the folder that holds MNIST/raw/."
    )


def download(root: str | os.PathLike) -> None:
    """Fetch MNIST into `root` with torchvision, failing fast with one clear error when offline."""
    from torchvision.datasets import MNIST  # only needed on this path

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # torchvision's urllib calls have no timeout of their own
    chatter = io.StringIO()  # torchvision prints a line per mirror tried; the user gets one error instead
    try:
        with contextlib.redirect_stdout(chatter):
            MNIST(str(root), train=True, download=True)
    except Exception as err:  # any network or mirror failure means the same thing to the user
        raise MnistLitError(_missing_message(root, str(err).strip().splitlines()[-1])) from err
    finally:
        socket.setdefaulttimeout(previous)


@dataclass
class RandomAffine:
    """Light augmentation, per sample: rotation, shift and zoom by up to the given amounts."""

    degrees: float = 10.0
    translate: float = 0.1  # as a fraction of the image side
    scale: float = 0.1  # zoom in or out by up to this fraction

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Warp a batch (B, 1, H, W) of [0, 1] images; what moves in from outside is black, like MNIST's border."""
        b = x.shape[0]

        def uniform(bound: float) -> torch.Tensor:
            return ((torch.rand(b, generator=generator) * 2 - 1) * bound).to(x.device)

        angle, zoom = torch.deg2rad(uniform(self.degrees)), 1 + uniform(self.scale)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        # affine_grid maps output to input in [-1, 1] units, so a shift of t image sides is 2t
        shift_x, shift_y = 2 * uniform(self.translate), 2 * uniform(self.translate)
        theta = torch.stack([torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def torchvision(self):
        """The same augmentation as a torchvision transform, for the torchvision loader."""
        from torchvision import transforms

        t, s = self.translate, self.scale
        return transforms.RandomAffine(self.degrees, translate=(t, t), scale=(1 - s, 1 + s))


class TensorBatches:
    """Batches by slicing a (shuffled) index over uint8 tensors: no per-item work and no worker processes.
    The tensors may live on the GPU; then so does every step here, normalization included."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        mean: float,
        std: float,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        augment: RandomAffine | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.mean, self.std = batch_size, mean, std
        self.shuffle, self.generator, self.augment = shuffle, generator, augment
        self.rank, self.world_size = rank, world_size

    def _count(self) -> int:
        n = len(self.labels)
        if self.shuffle:  # training: every DDP rank must take the same number of steps, or they deadlock
            return n // self.world_size
        return len(range(self.rank, n, self.world_size))  # evaluation: every sample, on exactly one rank

    def __len__(self) -> int:
        # every sample this rank serves: the last batch may be short
        return math.ceil(self._count() / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        if self.shuffle:
            # the same permutation on every rank (same seed), each rank taking its own stride of it
            order = torch.randperm(n, generator=self.generator)[self.rank :: self.world_size][: self._count()]
            order = order.to(self.images.device)
        elif self.world_size > 1:
            order = torch.arange(self.rank, n, self.world_size, device=self.images.device)
        else:
            order = None
        n = self._count()
        # ToTensor + Normalize, (x / 255 - mean) / std, folded into one multiply-add
        scale, shift = 1.0 / (255.0 * self.std), torch.tensor(-self.mean / self.std, device=self.images.device)
        for start in range(0, n, self.batch_size):
            idx = slice(start, start + self.batch_size) if order is None else order[start : start + self.batch_size]
            pixels = self.images[idx].unsqueeze(1)  # (B, 28, 28) uint8 -> (B, 1, 28, 28)
            if self.augment is not None:  # warped on [0, 1] pixels, so that what moves in is black
                pixels = self.augment(pixels.float().div_(255), self.generator).mul_(255)
            # uint8 * float promotes to float32 inside the one kernel
            yield torch.add(shift, pixels, alpha=scale), self.labels[idx]


class MNISTDataModule(L.LightningDataModule):
    """MNIST: 55k/5k train/val split of the official training set, and the official 10k test set."""

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 64,
        val_size: int = 5000,
        split_seed: int = 42,
        normalize: str = "mnist",
        loader: str = "fast",
        num_workers: int = 0,
        download: bool = True,
        augment: bool = False,
        aug_degrees: float = 10.0,
        aug_translate: float = 0.1,
        aug_scale: float = 0.1,
    ) -> None:
        super().__init__()
        if normalize not in NORMALIZATIONS:
            raise MnistLitError(f"data.normalize={normalize!r} is not one of {sorted(NORMALIZATIONS)}")
        if loader not in LOADERS:
            raise MnistLitError(f"data.loader={loader!r} is not one of {list(LOADERS)}")
        self.root, self.batch_size, self.val_size, self.split_seed = root, batch_size, val_size, split_seed
        self.loader, self.num_workers, self.allow_download = loader, num_workers, download
        self.mean, self.std = NORMALIZATIONS[normalize]
        self.augment = RandomAffine(aug_degrees, aug_translate, aug_scale) if augment else None
        self.train_set = self.val_set = self.test_set = None

    def prepare_data(self) -> None:
        if not missing_files(self.root):
            return
        if not self.allow_download:
            raise MnistLitError(_missing_message(self.root, "data.download=false"))
        download(self.root)

    def split_indices(self, n: int) -> tuple[list[int], list[int]]:
        """Train and val indices into the official training set, fixed by `split_seed`."""
        if not 0 < self.val_size < n:
            raise MnistLitError(f"data.val_size={self.val_size} must be between 1 and {n - 1}")
        generator = torch.Generator().manual_seed(self.split_seed)
        train, val = random_split(range(n), [n - self.val_size, self.val_size], generator=generator)
        return list(train.indices), list(val.indices)

    def setup(self, stage: str | None = None) -> None:
        # each split is decoded once, when a stage first needs it (evaluate.py never touches the training set)
        if stage in ("fit", "validate", None) and self.train_set is None:
            self.train_set, self.val_set = self._split_train()
        if stage in ("test", "predict", None) and self.test_set is None:
            self.test_set = self._test()

    def _device(self) -> torch.device:
        # MNIST is 55 MB as uint8: on a GPU it lives there, and batches never cross the bus
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        return device if device.type == "cuda" and self.loader == "fast" else torch.device("cpu")

    def _split_train(self) -> tuple:
        images, labels = load_split(self.root, "train")  # also checks the files, for either loader
        train_idx, val_idx = self.split_indices(len(labels))
        if self.loader == "torchvision":
            from torchvision import datasets

            train = datasets.MNIST(self.root, train=True, transform=self._transform(self.augment))
            val = datasets.MNIST(self.root, train=True, transform=self._transform(None))
            return Subset(train, train_idx), Subset(val, val_idx)
        device = self._device()
        images, labels = images.to(device), labels.to(device)
        train_idx, val_idx = torch.tensor(train_idx, device=device), torch.tensor(val_idx, device=device)
        return (images[train_idx], labels[train_idx]), (images[val_idx], labels[val_idx])

    def _test(self) -> tuple | Dataset:
        images, labels = load_split(self.root, "test")
        if self.loader == "torchvision":
            from torchvision import datasets

            return datasets.MNIST(self.root, train=False, transform=self._transform(None))
        return images.to(self._device()), labels.to(self._device())

    def _transform(self, augment: RandomAffine | None):
        from torchvision import transforms

        steps = [transforms.ToTensor(), transforms.Normalize((self.mean,), (self.std,))]
        if augment is not None:
            steps.insert(1, augment.torchvision())  # on [0, 1] pixels, before normalizing, as the fast path does
        return transforms.Compose(steps)

    def _loader(self, dataset, train: bool):
        if self.loader == "torchvision":
            return DataLoader(
                dataset,
                batch_size=self.batch_size,
                shuffle=train,
                num_workers=self.num_workers,
                persistent_workers=self.num_workers > 0,
                # fork: workers inherit the dataset instead of unpickling it, which also works inside the
                # worker processes of hydra/launcher=joblib (whose default start method needs pickling)
                multiprocessing_context="fork"
                if self.num_workers > 0 and "fork" in mp.get_all_start_methods()
                else None,
            )
        generator = torch.Generator().manual_seed(torch.initial_seed()) if train else None
        augment = self.augment if train else None
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        return TensorBatches(*dataset, self.batch_size, self.mean, self.std, train, generator, augment, rank, world)

    def train_dataloader(self):
        return self._loader(self.train_set, train=True)

    def val_dataloader(self):
        return self._loader(self.val_set, train=False)

    def test_dataloader(self):
        return self._loader(self.test_set, train=False)
