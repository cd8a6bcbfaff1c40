"""MNIST as a LightningDataModule: the fixed train/val split of the official training set, the
official test set, and either back-end (fast in-memory batches, or torchvision's Dataset +
DataLoader).

Try it: pytest tests/data
"""

from __future__ import annotations

import multiprocessing as mp

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Subset, random_split

from mnist_lit.data import NORMALIZATIONS
from mnist_lit.data.batches import RandomAffine, TensorBatches
from mnist_lit.data.idx import ensure, load_split


class MNISTDataModule(L.LightningDataModule):
    """MNIST: 55k/5k train/val split of the official training set, and the official 10k test set.
    `augment` is the training batches' augmentation (a RandomAffine, or None), for whatever must be
    warped as the digits are: training.run hands it to the LightningModule for the negatives."""

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
        # the settings' ranges and choices were checked with the config (mnist_lit.schema), before
        # any work
        self.root = root
        self.batch_size = batch_size
        self.val_size = val_size
        self.split_seed = split_seed
        self.loader = loader
        self.num_workers = num_workers
        self.allow_download = download
        self.mean, self.std = NORMALIZATIONS[normalize]
        self.augment = RandomAffine(aug_degrees, aug_translate, aug_scale) if augment else None
        self.train_set = self.val_set = self.test_set = None

    def prepare_data(self) -> None:
        ensure(self.root, self.allow_download)

    def split_indices(self, n: int) -> tuple[list[int], list[int]]:
        """Train and val indices into the official training set, fixed by `split_seed`."""
        generator = torch.Generator().manual_seed(self.split_seed)
        train, val = random_split(range(n), [n - self.val_size, self.val_size], generator=generator)
        return list(train.indices), list(val.indices)

    def setup(self, stage: str | None = None) -> None:
        # each split is decoded once, when a stage first needs it (evaluate.py never touches the
        # training set)
        if stage in ("fit", "validate", None) and self.train_set is None:
            self.train_set, self.val_set = self._split_train()
        if stage in ("test", "predict", None) and self.test_set is None:
            self.test_set = self._test()

    def _device(self) -> torch.device:
        # MNIST is 55 MB as uint8: on a GPU it lives there, and batches never cross the bus
        device = (
            self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        )
        return device if device.type == "cuda" and self.loader == "fast" else torch.device("cpu")

    def _split_train(self) -> tuple:
        # also checks the files, for either loader
        images, labels = load_split(self.root, "train")
        train_idx, val_idx = self.split_indices(len(labels))
        if self.loader == "torchvision":
            from torchvision import datasets

            train = datasets.MNIST(self.root, train=True, transform=self._transform(self.augment))
            val = datasets.MNIST(self.root, train=True, transform=self._transform(None))
            return Subset(train, train_idx), Subset(val, val_idx)
        device = self._device()
        images, labels = images.to(device), labels.to(device)
        train_idx = torch.tensor(train_idx, device=device)
        val_idx = torch.tensor(val_idx, device=device)
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
            # on [0, 1] pixels, before normalizing, as the fast path does
            steps.insert(1, augment.torchvision())
        return transforms.Compose(steps)

    def _loader(self, dataset, train: bool):
        if self.loader == "torchvision":
            return DataLoader(
                dataset,
                batch_size=self.batch_size,
                shuffle=train,
                num_workers=self.num_workers,
                persistent_workers=self.num_workers > 0,
                # fork: workers inherit the dataset instead of unpickling it, which also works
                # inside the
                # worker processes of hydra/launcher=joblib (whose default start method needs
                # pickling)
                multiprocessing_context="fork"
                if self.num_workers > 0 and "fork" in mp.get_all_start_methods()
                else None,
            )
        # seed_everything(seed) gave every DDP rank the same initial seed: seeded from it, each
        # rank's generator
        # draws the same permutation, so the ranks' strides of it never overlap
        generator = torch.Generator().manual_seed(torch.initial_seed()) if train else None
        rank, world = (
            (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        )
        images, labels = dataset
        return TensorBatches(
            images=images,
            labels=labels,
            batch_size=self.batch_size,
            mean=self.mean,
            std=self.std,
            shuffle=train,
            generator=generator,
            augment=self.augment if train else None,
            rank=rank,
            world_size=world,
        )

    def train_dataloader(self):
        return self._loader(self.train_set, train=True)

    def val_dataloader(self):
        return self._loader(self.val_set, train=False)

    def test_dataloader(self):
        return self._loader(self.test_set, train=False)
