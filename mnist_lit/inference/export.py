"""A checkpoint as one self-contained ONNX file, checked against torch on the MNIST test set before
it is kept.

Try it: python export.py ckpt=outputs/runs/<run>/checkpoints/best.ckpt out=model.onnx
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mnist_lit import IMAGE_SIZE, MnistLitError, checkpoints
from mnist_lit.files import atomic_write
from mnist_lit.inference import onnx_model as meta
from mnist_lit.inference.onnx_model import OnnxModel
from mnist_lit.inference.torch_model import Scorer
from mnist_lit.progress import progress
from mnist_lit.reading.preprocess import VERSION as PREPROCESSING

# the traced example's batch; a batch of 1 would be specialized into the graph as a constant
EXAMPLE_BATCH = 2
# the most any output of onnxruntime may differ from torch's for the export to be kept
MAX_ABS_DIFF = 1e-4
# test digits per forward pass when comparing
VERIFY_BATCH = 1000
INPUT_DOC = (
    "pixels: float32 (N, 1, 28, 28), grey in [0, 1], white digit on black, prepared as MNIST: "
    "see preprocessing"
)
PROBS_DOC = (
    "probs: float32 (N, 10), calibrated probabilities of the digits 0-9 (temperature scaling)"
)
NOT_DIGIT_DOC = (
    "not_digit: float32 (N,), the probability that the picture holds no digit; "
    "reject above the threshold"
)


@dataclass(frozen=True)
class Parity:
    """How an exported model agrees with torch on the same pictures."""

    total: int
    # pictures whose most likely digit is the same in both
    same_digit: int
    # over every output value
    max_abs_diff: float

    @property
    def ok(self) -> bool:
        """Every picture the same digit, every value within MAX_ABS_DIFF."""
        return self.same_digit == self.total and self.max_abs_diff <= MAX_ABS_DIFF

    def line(self) -> str:
        """The two figures, in one line."""
        return (
            f"onnxruntime vs torch on {self.total:,} MNIST test digits: same digit on "
            f"{self.same_digit:,}, "
            f"max abs difference {self.max_abs_diff:.1e} (allowed {MAX_ABS_DIFF:.0e})"
        )


def metadata(ckpt: dict, ckpt_path: str | os.PathLike, unsure: float) -> dict[str, str]:
    """What a consumer of the file needs besides the graph, as ONNX metadata_props (strings; JSON
    where structured)."""
    mean, std = checkpoints.normalization(ckpt)
    calibration = checkpoints.calibration(ckpt)
    return {
        meta.FORMAT_KEY: meta.FORMAT,
        meta.CLASSES: json.dumps(meta.DIGITS),
        meta.INPUT_DOC: INPUT_DOC,
        meta.OUTPUTS_DOC: PROBS_DOC
        + ("; " + NOT_DIGIT_DOC if calibration.not_digit is not None else ""),
        meta.NORMALIZATION: json.dumps(
            {"mean": mean, "std": std, "applied": "inside the graph: (x - mean) / std"}
        ),
        meta.TEMPERATURE: json.dumps(calibration.temperature),
        meta.NOT_DIGIT_THRESHOLD: json.dumps(calibration.not_digit),
        meta.UNSURE_GAP: json.dumps(unsure),
        meta.PREPROCESSING_KEY: PREPROCESSING,
        meta.SOURCE: Path(ckpt_path).name,
    }


def to_onnx(scorer: Scorer, props: dict[str, str]) -> bytes:
    """The scorer's graph with a dynamic batch axis and its weights inside, as the bytes of one
    .onnx file."""
    example = torch.rand(EXAMPLE_BATCH, 1, IMAGE_SIZE, IMAGE_SIZE)
    outputs = [meta.PROBS, meta.NOT_DIGIT] if scorer.not_digit else [meta.PROBS]
    # the exporter logs and warns about its own internals on every run; none of it is the user's to
    # act on
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                scorer,
                (example,),
                dynamo=True,
                input_names=[meta.INPUT],
                output_names=outputs,
                dynamic_shapes={"pixels": {0: torch.export.Dim("batch")}},
                external_data=False,
                verbose=False,
            )
    except ImportError as err:
        # the exporter needs onnx and onnxscript
        raise MnistLitError(
            f"exporting needs the onnx extra: pip install -e '.[onnx]' ({err})"
        ) from None
    proto = program.model_proto
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


@torch.inference_mode()
def parity(scorer: Scorer, path: str | os.PathLike, images: np.ndarray) -> Parity:
    """Run torch and onnxruntime on (N, 28, 28) uint8 images; compare their digits and every output
    value."""
    model = OnnxModel(path, device="cpu")
    same, diff = 0, 0.0
    starts = range(0, len(images), VERIFY_BATCH)
    for start in progress(starts, len(starts), "checking the export", show_from=1):
        # (B, 1, 28, 28)
        x = images[start : start + VERIFY_BATCH, None].astype(np.float32) / 255.0
        ours = scorer(torch.from_numpy(x))
        ours = [t.numpy() for t in (ours if isinstance(ours, tuple) else (ours,))]
        theirs = [t for t in model.scores(x) if t is not None]
        same += int((ours[0].argmax(1) == theirs[0].argmax(1)).sum())
        diff = max(diff, *(float(np.abs(a - b).max()) for a, b in zip(ours, theirs)))
    return Parity(len(images), same, diff)


def export(
    ckpt_path: str | os.PathLike, out: str | os.PathLike, images: np.ndarray, unsure: float
) -> Parity:
    """Write the checkpoint's model to `out`, only once onnxruntime agrees with torch on
    `images`."""
    ckpt = checkpoints.read(ckpt_path)
    # in eval mode: dropout would otherwise be exported live
    scorer = Scorer.of(ckpt, ckpt_path)
    data = to_onnx(scorer, metadata(ckpt, ckpt_path, unsure))
    out = Path(out)
    trial = out.with_name(f".{out.name}.{os.getpid()}.check.onnx")
    try:
        atomic_write(trial, lambda f: f.write(data))
        result = parity(scorer, trial, images)
        if not result.ok:
            raise MnistLitError(
                f"the export does not match torch, so it was not written: {result.line()}"
            )
        os.replace(trial, out)
    finally:
        trial.unlink(missing_ok=True)
    return result
