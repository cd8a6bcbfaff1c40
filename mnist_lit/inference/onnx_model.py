"""An exported model on onnxruntime, without torch: what predict.py and serve.py run for
ckpt=model.onnx, and the metadata that export.py writes into every file.

Try it: python export.py && python predict.py image=path/to/pictures/ ckpt=model.onnx
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from mnist_lit import IMAGE_SIZE, NUM_CLASSES, MnistLitError, devices, first_line
from mnist_lit.answer import Calibration
from mnist_lit.reading.preprocess import VERSION as PREPROCESSING

# the graph's names, shared with export.py
INPUT, PROBS, NOT_DIGIT = "pixels", "probs", "not_digit"
# metadata_props keys; FORMAT_KEY marks a file as written by export.py
FORMAT_KEY, FORMAT = "mnist_lit.format", "1"
CLASSES, NORMALIZATION, TEMPERATURE = "classes", "normalization", "temperature"
NOT_DIGIT_THRESHOLD, UNSURE_GAP, PREPROCESSING_KEY = (
    "not_digit_threshold",
    "unsure_gap",
    "preprocessing",
)
INPUT_DOC, OUTPUTS_DOC, SOURCE = "input", "outputs", "source_checkpoint"
CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
# the classes, in the order of the probabilities
DIGITS = [str(k) for k in range(NUM_CLASSES)]


def _runtime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise MnistLitError(
            "running an .onnx model needs onnxruntime: pip install -e '.[onnx]'"
        ) from None
    return onnxruntime


def cuda_available() -> bool:
    """Whether this onnxruntime build can run on a CUDA GPU."""
    return CUDA in _runtime().get_available_providers()


def providers(device: str) -> list[Any]:
    """onnxruntime's execution providers for predict.py's `device` setting (auto, cpu, cuda,
    cuda:N)."""
    device = devices.resolve(device, cuda_available)
    if device == devices.CPU:
        return [CPU]
    if device == "cuda" or device.startswith("cuda:"):
        if not cuda_available():
            raise MnistLitError(
                f"device={device}, but this onnxruntime cannot use CUDA; use device=cpu or "
                "device=auto"
            )
        index = device.partition(":")[2] or "0"
        if not index.isdigit():
            raise MnistLitError(f"device={device} is not a device; use cuda:N")
        return [(CUDA, {"device_id": int(index)}), CPU]
    raise MnistLitError(f"device={device} is not one of auto, cpu, cuda, cuda:N")


class OnnxModel:
    """An export.py file, checked to be one, on onnxruntime."""

    def __init__(self, path: str | os.PathLike, device: str = "auto", threads: int = 0) -> None:
        ort = _runtime()
        options = ort.SessionOptions()
        # errors only: its warnings about unused initializers are not the user's
        options.log_severity_level = 3
        # one serving process per core: more threads would only fight the other processes
        if threads:
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers(device))
        except MnistLitError:
            raise
        except Exception as err:
            # onnxruntime raises its own kinds for a file that is no model
            raise MnistLitError(f"{path} is not a readable ONNX model: {first_line(err)}") from None
        self.meta = self.session.get_modelmeta().custom_metadata_map
        check(self.meta, self.session, path)
        threshold = json.loads(self.meta[NOT_DIGIT_THRESHOLD])
        self.calibration = Calibration(
            float(self.meta[TEMPERATURE]), None if threshold is None else float(threshold)
        )
        self.outputs = [o.name for o in self.session.get_outputs()]

    def scores(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, 10) calibrated digit probabilities and (N,) probabilities of no digit (None without
        that output) for (N, 1, 28, 28) float32 pixels in [0, 1]."""
        out = dict(zip(self.outputs, self.session.run(None, {INPUT: pixels})))
        return out[PROBS], out.get(NOT_DIGIT)


def check(meta: dict[str, str], session: Any, path: str | os.PathLike) -> None:
    """Refuse an ONNX file that export.py did not write, or wrote for another preprocessing."""
    inputs, outputs = session.get_inputs(), [o.name for o in session.get_outputs()]
    shape = inputs[0].shape[1:] if len(inputs) == 1 else None
    if (
        meta.get(FORMAT_KEY) != FORMAT
        or [i.name for i in inputs] != [INPUT]
        or PROBS not in outputs
    ):
        raise MnistLitError(
            f"{path} is an ONNX model, but not an mnist-lit digit model (no {FORMAT_KEY} metadata, "
            "or other "
            "inputs and outputs); write one with `python export.py`"
        )
    if shape != [1, IMAGE_SIZE, IMAGE_SIZE] or json.loads(meta.get(CLASSES, "[]")) != DIGITS:
        raise MnistLitError(
            f"{path} takes {shape} inputs or other classes; expected 1x28x28 and the digits 0-9"
        )
    if meta.get(PREPROCESSING_KEY) != PREPROCESSING:
        raise MnistLitError(
            f"{path} was exported for preprocessing {meta.get(PREPROCESSING_KEY)!r}, and this "
            "mnist-lit prepares "
            f"pictures as {PREPROCESSING!r}; export it again from its checkpoint"
        )
