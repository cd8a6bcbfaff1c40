"""The config's schema: typed dataclasses in Hydra's ConfigStore, so that a bad value is refused
before any work, for every command: train.py's groups, and predict.py's, serve.py's, export.py's and
evaluate.py's own settings.

Try it: python train.py optimizer.lr=abc   (refused while composing: not a float)
python train.py data.batch_size=-1 (refused by validate(), before the data is even read)
python predict.py image=x.png topk=0  (refused by validate(), before the model is loaded)

Types are checked by Hydra when it composes (each YAML of data/, model/ and optimizer/, and each
command's own YAML, names its schema in its defaults list). Ranges and choices are checked here and
nowhere else, by `validate`, which reads each composed value and checks it against the Rule declared
beside its field: here, because this is the one place that sees every setting before any work
starts, and names it as the user wrote it. The classes and functions that take these settings trust
them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from mnist_lit import MnistLitError
from mnist_lit.checkpoints import ONNX_SUFFIX
from mnist_lit.data import LOADERS, NORMALIZATIONS, TRAIN_SIZE
from mnist_lit.reading.segment import READS


@dataclass(frozen=True)
class Rule:
    """What a setting's value must be: a test, and how the error message says it."""

    valid: Callable[[Any], bool]
    expected: str


def ruled(rule: Rule, default: Any = MISSING) -> Any:
    """A schema field whose value must keep `rule` (required in the YAML unless given a default)."""
    return field(default=default, metadata={"rule": rule})


AT_LEAST_1 = Rule(lambda v: v >= 1, "at least 1")
NON_NEGATIVE = Rule(lambda v: v >= 0, "0 or more")
POSITIVE = Rule(lambda v: v > 0, "a positive number")
FRACTION = Rule(lambda v: 0 <= v < 1, "in [0, 1)")
PROBABILITY = Rule(
    lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1,
    "a probability in [0, 1]",
)
AUTO_OR_COUNT = Rule(
    lambda v: v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1),
    "auto or a whole number, at least 1",
)
GIVEN_PICTURES = Rule(
    bool, "a picture, a folder or a glob (image=FILE, image=FOLDER or image='GLOB')"
)
# predict.py's output
FORMATS = ("table", "jsonl")
# the only hosts LitServer.run accepts
SERVE_HOSTS = ("127.0.0.1", "0.0.0.0", "::")
# serve.py's auth: "none" serves beyond loopback without a key, on purpose
AUTHS = ("key", "none")
# characters of an API key: a short one can be guessed
MIN_KEY = 16
NUMBER = Rule(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number")
# uvicorn's
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


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
    # the validation split comes out of the official training set, and both parts must hold
    # something
    val_size: int = ruled(Rule(lambda v: 1 <= v < TRAIN_SIZE, f"between 1 and {TRAIN_SIZE - 1}"))
    split_seed: int = MISSING
    normalize: str = ruled(one_of(NORMALIZATIONS))
    loader: str = ruled(one_of(LOADERS))
    num_workers: int = ruled(NON_NEGATIVE)
    download: bool = MISSING
    augment: bool = MISSING
    aug_degrees: float = ruled(Rule(lambda v: 0 <= v <= 180, "between 0 and 180"))
    # of the image side: half is gone
    aug_translate: float = ruled(Rule(lambda v: 0 <= v < 0.5, "in [0, 0.5)"))
    aug_scale: float = ruled(FRACTION)


@dataclass
class NetSchema:
    """What every model/*.yaml has."""

    dropout: float = ruled(FRACTION)
    _target_: str = MISSING
    arch: str = MISSING
    batchnorm: bool = MISSING
    negatives: float = ruled(Rule(lambda v: 0 <= v <= 1, "between 0 and 1"), default=0.0)
    shape_critic: bool = True


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

    # four stages: the head's input size (channels[-1] x 3 x 3) assumes three poolings after the
    # first conv
    channels: list[int] = ruled(
        Rule(lambda v: len(v) == 4 and min(v) >= 1, "4 conv widths, each at least 1")
    )
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


@dataclass
class PathsSchema:
    """paths/default.yaml: where every command finds and writes its files."""

    outputs: str = MISSING
    runs: str = MISSING
    multiruns: str = MISSING
    data: str = MISSING


@dataclass
class CommandSchema:
    """What every command but train.py has: where its files are, and the model file it runs."""

    paths: PathsSchema = field(default_factory=PathsSchema)
    ckpt: str | None = None


@dataclass
class AnswerSchema(CommandSchema):
    """answer.yaml: how predict.py and serve.py read a picture and when they say "not a digit" or
    "unsure"."""

    read: str = ruled(one_of(READS))
    not_digit: Any = ruled(
        Rule(lambda v: v == "auto" or PROBABILITY.valid(v), "auto or a probability in [0, 1]")
    )
    unsure: float = ruled(Rule(PROBABILITY.valid, "a probability gap in [0, 1]"))


@dataclass
class PredictSchema(AnswerSchema):
    """predict.yaml"""

    image: str | None = ruled(GIVEN_PICTURES, default=None)
    format: str = ruled(one_of(FORMATS))
    topk: int = ruled(Rule(lambda v: 1 <= v <= 10, "between 1 and 10"))
    device: str = MISSING
    batch_size: int = ruled(AT_LEAST_1)
    workers: Any = ruled(AUTO_OR_COUNT)
    annotate: str | None = None


@dataclass
class ServeSchema(AnswerSchema):
    """serve.yaml"""

    host: str = ruled(one_of(SERVE_HOSTS))
    port: int = ruled(Rule(lambda v: 1024 <= v <= 65535, "a port from 1024 to 65535"))
    accelerator: str = MISSING
    devices: Any = MISSING
    workers_per_device: Any = ruled(AUTO_OR_COUNT)
    max_batch_size: int = ruled(AT_LEAST_1)
    max_worker_mb: float = ruled(NON_NEGATIVE)
    batch_timeout: float = ruled(NON_NEGATIVE)
    timeout: float = ruled(POSITIVE)
    api_servers: int = ruled(AT_LEAST_1)
    log_level: str = ruled(one_of(LOG_LEVELS))
    api_key: str | None = ruled(
        Rule(lambda v: v is None or len(v) >= MIN_KEY, f"at least {MIN_KEY} characters")
    )
    auth: str = ruled(one_of(AUTHS))
    allowed_hosts: list[str] = field(default_factory=list)
    cors_origins: list[str] = field(default_factory=list)
    rate: Any = ruled(
        Rule(
            lambda v: v == "auto" or (NUMBER.valid(v) and v >= 0),
            "auto or requests per second, 0 or more",
        )
    )
    burst: int = ruled(AT_LEAST_1)
    docs: bool = MISSING
    max_upload_mb: float = ruled(POSITIVE)
    max_megapixels: float = ruled(POSITIVE)
    heavy_megapixels: float = ruled(POSITIVE)
    max_in_flight_mb: float = ruled(POSITIVE)
    header_timeout: float = ruled(POSITIVE)
    body_timeout: float = ruled(POSITIVE)
    keep_alive: int = ruled(AT_LEAST_1)
    max_connections: int = ruled(AT_LEAST_1)
    grace: float = ruled(NON_NEGATIVE)
    metrics: bool = MISSING
    access_log: bool = MISSING


@dataclass
class ExportSchema(CommandSchema):
    """export.yaml"""

    out: str = ruled(Rule(lambda v: v.lower().endswith(ONNX_SUFFIX), "a file name ending in .onnx"))
    force: bool = MISSING
    download: bool = MISSING
    unsure: float = ruled(Rule(PROBABILITY.valid, "a probability gap in [0, 1]"))


@dataclass
class EvaluateSchema(CommandSchema):
    """evaluate.yaml (its `data` node is typed by data/schema)"""

    data: Any = MISSING
    out: str | None = None
    accelerator: str = MISSING
    precision: str | None = None


COMMANDS = {
    "predict": PredictSchema,
    "serve": ServeSchema,
    "export": ExportSchema,
    "evaluate": EvaluateSchema,
}


def check(key: str, node: DictConfig) -> None:
    """Raise MnistLitError, naming `key.field=value` (`field=value` at the top), for the first field
    of the composed `node` that breaks the rule its schema declares."""
    for spec in fields(OmegaConf.get_type(node)):
        rule = spec.metadata.get("rule")
        if rule is None:
            continue
        value = node[spec.name]
        # a list setting
        value = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
        if not rule.valid(value):
            name = f"{key}{'.' if key else ''}{spec.name}"
            # a setting left out
            if value is None:
                raise MnistLitError(f"give {name}: {rule.expected}")
            raise MnistLitError(f"{name}={value} is invalid: it must be {rule.expected}")


def register() -> None:
    """Put the schemas in Hydra's ConfigStore, where the YAML defaults lists find them. They are
    stored outside the config groups, so that `--help` lists only choices a user can pick."""
    cs = ConfigStore.instance()
    cs.store(name="data_schema", node=DataSchema)
    cs.store(name="cnn_schema", node=CNNSchema)
    cs.store(name="deep_cnn_schema", node=DeepCNNSchema)
    cs.store(name="adam_schema", node=AdamSchema)
    cs.store(name="sgd_schema", node=SGDSchema)
    # each command's YAML names its schema first in its defaults list
    for name, node in COMMANDS.items():
        cs.store(name=f"{name}_schema", node=node)


def validate(cfg: DictConfig) -> None:
    """Check every range and choice the schema knows, and the Trainer's run length; raises
    MnistLitError on the first. A config without some of these nodes (evaluate.py has no model) is
    checked for what it has; a command's own settings are checked by the schema its YAML names."""
    if OmegaConf.get_type(cfg) in COMMANDS.values():
        check("", cfg)
    for key in ("data", "model", "optimizer"):
        node = cfg.get(key)
        if OmegaConf.is_config(node) and OmegaConf.get_type(node) not in (dict, None):
            check(key, node)
    trainer = cfg.get("trainer")
    if trainer is not None and not trainer.get("fast_dev_run"):
        epochs = trainer.get("max_epochs")
        # -1: no limit, as Lightning takes it
        if not (epochs is None or epochs == -1 or epochs >= 1):
            raise MnistLitError(
                f"trainer.max_epochs={epochs} is invalid: it must be at least 1 (or -1)"
            )


register()
