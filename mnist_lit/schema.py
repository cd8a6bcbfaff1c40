"""The config's schema: typed dataclasses in Hydra's ConfigStore, so that a bad value is refused before any work.

Try it: python train.py optimizer.lr=abc   (refused while composing: not a float)
        python train.py data.batch_size=-1 (refused by validate(), before the data is even read)

Types are checked by Hydra when it composes (each YAML of data/, model/ and optimizer/ names its schema in its
defaults list). Ranges and choices are checked here and nowhere else, by `validate`, which builds each dataclass
from the composed values and runs its `check`: here, because this is the one place that sees every setting before
any work starts, and names it as the user wrote it. The classes that take these settings (the DataModule, the
networks, the optimizers) trust them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from mnist_lit import MnistLitError
from mnist_lit.data import LOADERS, NORMALIZATIONS
from mnist_lit.idx import TRAIN_SIZE


def _require(ok: bool, key: str, value: Any, rule: str) -> None:
    if not ok:
        raise MnistLitError(f"{key}={value} is invalid: it must be {rule}")


@dataclass
class DataSchema:
    """data/*.yaml"""

    _target_: str = MISSING
    root: str = MISSING
    batch_size: int = MISSING
    val_size: int = MISSING
    split_seed: int = MISSING
    normalize: str = MISSING
    loader: str = MISSING
    num_workers: int = MISSING
    download: bool = MISSING
    augment: bool = MISSING
    aug_degrees: float = MISSING
    aug_translate: float = MISSING
    aug_scale: float = MISSING

    def check(self) -> None:
        _require(self.batch_size >= 1, "data.batch_size", self.batch_size, "at least 1")
        # the validation split comes out of the official training set, and both parts must hold something
        _require(1 <= self.val_size < TRAIN_SIZE, "data.val_size", self.val_size, f"between 1 and {TRAIN_SIZE - 1}")
        _require(self.normalize in NORMALIZATIONS, "data.normalize", self.normalize, f"one of {sorted(NORMALIZATIONS)}")
        _require(self.loader in LOADERS, "data.loader", self.loader, f"one of {list(LOADERS)}")
        _require(self.num_workers >= 0, "data.num_workers", self.num_workers, "0 or more")
        _require(0 <= self.aug_degrees <= 180, "data.aug_degrees", self.aug_degrees, "between 0 and 180")
        _require(0 <= self.aug_translate < 0.5, "data.aug_translate", self.aug_translate, "in [0, 0.5)")
        _require(0 <= self.aug_scale < 1, "data.aug_scale", self.aug_scale, "in [0, 1)")


@dataclass
class NetSchema:
    """What every model/*.yaml has."""

    _target_: str = MISSING
    arch: str = MISSING
    dropout: float = MISSING
    batchnorm: bool = MISSING

    def check(self) -> None:
        _require(0 <= self.dropout < 1, "model.dropout", self.dropout, "in [0, 1)")


def _widths(key: str, widths: list[int]) -> None:
    for w in widths:
        _require(w >= 1, key, widths if len(widths) > 1 else w, "positive")


@dataclass
class CNNSchema(NetSchema):
    """model/cnn.yaml"""

    conv1: int = MISSING
    conv2: int = MISSING
    fc: int = MISSING
    depth: int = MISSING

    def check(self) -> None:
        super().check()
        for key in ("conv1", "conv2", "fc", "depth"):
            _widths(f"model.{key}", [getattr(self, key)])


@dataclass
class DeepCNNSchema(NetSchema):
    """model/deep_cnn.yaml"""

    channels: list[int] = MISSING
    fc1: int = MISSING
    fc2: int = MISSING

    def check(self) -> None:
        super().check()
        _require(len(self.channels) == 4, "model.channels", list(self.channels), "4 conv widths")
        _widths("model.channels", list(self.channels))
        _widths("model.fc1", [self.fc1])
        _widths("model.fc2", [self.fc2])


@dataclass
class OptimizerSchema:
    """The `optimizer` node that optimizer/*.yaml and the presets fill."""

    _target_: str = MISSING
    _partial_: bool = True
    lr: float = MISSING
    weight_decay: float = 0.0

    def check(self) -> None:
        _require(self.lr > 0, "optimizer.lr", self.lr, "a positive number")
        _require(self.weight_decay >= 0, "optimizer.weight_decay", self.weight_decay, "0 or more")


@dataclass
class AdamSchema(OptimizerSchema):
    fused: bool | None = None


@dataclass
class SGDSchema(OptimizerSchema):
    momentum: float = 0.0

    def check(self) -> None:
        super().check()
        _require(0 <= self.momentum < 1, "optimizer.momentum", self.momentum, "in [0, 1)")


def register() -> None:
    """Put the schemas in Hydra's ConfigStore, where the YAML defaults lists find them."""
    cs = ConfigStore.instance()
    cs.store(group="data", name="schema", node=DataSchema)
    cs.store(group="model", name="cnn_schema", node=CNNSchema)
    cs.store(group="model", name="deep_cnn_schema", node=DeepCNNSchema)
    # optimizer/*.yaml are global (they set `scheduler` too): their schema types the `optimizer` node alone
    cs.store(group="optimizer", name="adam_schema", node=AdamSchema, package="optimizer")
    cs.store(group="optimizer", name="sgd_schema", node=SGDSchema, package="optimizer")


def validate(cfg: DictConfig) -> None:
    """Check every range and choice the schema knows, and the Trainer's run length; raises MnistLitError on the
    first. A config without some of these nodes (evaluate.py has no model) is checked for what it has."""
    for key in ("data", "model", "optimizer"):
        node = cfg.get(key)
        if OmegaConf.is_config(node) and OmegaConf.get_type(node) not in (dict, None):
            OmegaConf.to_object(node).check()  # the dataclass, built from the composed values
    trainer = cfg.get("trainer")
    if trainer is not None and not trainer.get("fast_dev_run"):
        epochs = trainer.get("max_epochs")
        _require(epochs is None or epochs == -1 or epochs >= 1, "trainer.max_epochs", epochs, "at least 1 (or -1)")


register()
