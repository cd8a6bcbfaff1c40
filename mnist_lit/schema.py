"""The config's schema: typed dataclasses in Hydra's ConfigStore, so that a bad value is refused before any work.

Try it: python train.py optimizer.lr=abc   (refused while composing: not a float)
        python train.py data.batch_size=-1 (refused by validate(), before the data is even read)

Types are checked by Hydra when it composes (each YAML of data/, model/ and optimizer/ names its schema in its
defaults list). Ranges and choices are checked here and nowhere else, by `validate`, which builds each dataclass
from the composed values and checks each field against the Rule declared beside it: here, because this is the
one place that sees every setting before any work starts, and names it as the user wrote it. The classes that
take these settings (the DataModule, the networks, the optimizers) trust them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from mnist_lit import MnistLitError
from mnist_lit.data import LOADERS, NORMALIZATIONS
from mnist_lit.idx import TRAIN_SIZE


@dataclass(frozen=True)
class Rule:
    """What a setting's value must be: a test, and how the error message says it."""

    holds: Callable[[Any], bool]
    says: str


def ruled(rule: Rule, default: Any = MISSING) -> Any:
    """A schema field whose value must keep `rule` (required in the YAML unless given a default)."""
    return field(default=default, metadata={"rule": rule})


AT_LEAST_1 = Rule(lambda v: v >= 1, "at least 1")
NON_NEGATIVE = Rule(lambda v: v >= 0, "0 or more")
POSITIVE = Rule(lambda v: v > 0, "a positive number")
FRACTION = Rule(lambda v: 0 <= v < 1, "in [0, 1)")


def one_of(choices: Iterable[str]) -> Rule:
    """A Rule that takes only the named choices."""
    allowed = sorted(choices)
    return Rule(lambda v: v in allowed, f"one of {allowed}")


@dataclass
class DataSchema:
    """data/*.yaml"""

    _target_: str = MISSING
    root: str = MISSING
    batch_size: int = ruled(AT_LEAST_1)
    # the validation split comes out of the official training set, and both parts must hold something
    val_size: int = ruled(Rule(lambda v: 1 <= v < TRAIN_SIZE, f"between 1 and {TRAIN_SIZE - 1}"))
    split_seed: int = MISSING
    normalize: str = ruled(one_of(NORMALIZATIONS))
    loader: str = ruled(one_of(LOADERS))
    num_workers: int = ruled(NON_NEGATIVE)
    download: bool = MISSING
    augment: bool = MISSING
    aug_degrees: float = ruled(Rule(lambda v: 0 <= v <= 180, "between 0 and 180"))
    aug_translate: float = ruled(Rule(lambda v: 0 <= v < 0.5, "in [0, 0.5)"))  # of the image side: half is gone
    aug_scale: float = ruled(FRACTION)


@dataclass
class NetSchema:
    """What every model/*.yaml has."""

    dropout: float = ruled(FRACTION)
    _target_: str = MISSING
    arch: str = MISSING
    batchnorm: bool = MISSING
    negatives: float = ruled(Rule(lambda v: 0 <= v <= 1, "between 0 and 1"), default=0.0)


@dataclass
class CNNSchema(NetSchema):
    """model/cnn.yaml"""

    conv1: int = ruled(AT_LEAST_1)
    conv2: int = ruled(AT_LEAST_1)
    fc: int = ruled(AT_LEAST_1)
    depth: int = ruled(AT_LEAST_1)


@dataclass
class DeepCNNSchema(NetSchema):
    """model/deep_cnn.yaml"""

    # four stages: the head's input size (channels[-1] x 3 x 3) assumes three poolings after the first conv
    channels: list[int] = ruled(Rule(lambda v: len(v) == 4 and min(v) >= 1, "4 conv widths, each at least 1"))
    fc1: int = ruled(AT_LEAST_1)
    fc2: int = ruled(AT_LEAST_1)


@dataclass
class OptimizerSchema:
    """The `optimizer` node that optimizer/*.yaml and the presets fill."""

    _target_: str = MISSING
    _partial_: bool = True
    lr: float = ruled(POSITIVE)
    weight_decay: float = ruled(NON_NEGATIVE, default=0.0)


@dataclass
class AdamSchema(OptimizerSchema):
    fused: bool | None = None


@dataclass
class SGDSchema(OptimizerSchema):
    momentum: float = ruled(FRACTION, default=0.0)


def check(key: str, schema: Any) -> None:
    """Raise MnistLitError, naming `key.field=value`, for the first field of `schema` that breaks its rule."""
    for spec in fields(schema):
        rule, value = spec.metadata.get("rule"), getattr(schema, spec.name)
        if rule is not None and not rule.holds(value):
            shown = list(value) if isinstance(value, (list, tuple)) else value
            raise MnistLitError(f"{key}.{spec.name}={shown} is invalid: it must be {rule.says}")


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
            check(key, OmegaConf.to_object(node))  # the dataclass, built from the composed values
    trainer = cfg.get("trainer")
    if trainer is not None and not trainer.get("fast_dev_run"):
        epochs = trainer.get("max_epochs")
        if not (epochs is None or epochs == -1 or epochs >= 1):  # -1: no limit, as Lightning takes it
            raise MnistLitError(f"trainer.max_epochs={epochs} is invalid: it must be at least 1 (or -1)")


register()
