"""Load a train.py checkpoint safely and classify user pictures in batches; no Lightning, no torchvision.

Try it: python predict.py image=path/to/digits/ format=jsonl
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from mnist_lit import MnistLitError, checkpoints
from mnist_lit.answer import NOT_A_DIGIT, Answer, Thresholds, answers
from mnist_lit.pictures import PictureError, list_pictures, read_picture
from mnist_lit.preprocess import normalize

PARALLEL_FROM = 64  # below this many pictures, worker processes cost more than they save
CHUNK = 16  # pictures handed to a worker at a time


@dataclass
class Prediction:
    """The outcome for one picture: its answer (mnist_lit.answer), or an error message."""

    image: str
    pixels: np.ndarray | None = None  # the 28x28 uint8 input the model saw
    answer: Answer | None = None
    error: str | None = None

    def to_json(self) -> str:
        """One JSON line: image and the answer's fields (verdict, digit, confidence, probs, ...); or image and error."""
        if self.error or self.answer is None:
            return json.dumps({"image": self.image, "error": self.error})
        return json.dumps({"image": self.image, **self.answer.fields()})


@dataclass
class Found:
    """The pictures a spec names, an entry with an error for each unusable spec, and the files skipped as not
    pictures (in a folder)."""

    paths: list[str]
    failed: list[Prediction]
    skipped: list[str]

    def skipped_line(self) -> str | None:
        """One line naming the files skipped, or None when there were none."""
        if not self.skipped:
            return None
        return f"skipped {len(self.skipped)} file(s) that are not pictures: {', '.join(self.skipped)}"


def find_images(spec: str) -> Found:
    """Paths named by a file, a folder (its pictures, sorted) or a glob; plus a failed entry per unusable spec."""
    path = Path(spec).expanduser()
    if path.is_dir():
        found, skipped = list_pictures(path)
        if not found:
            return Found([], [Prediction(spec, error="folder has no pictures")], skipped)
        return Found(found, [], skipped)
    if path.is_file():
        return Found([str(path)], [], [])
    if glob.has_magic(spec):
        found = sorted(p for p in glob.glob(os.path.expanduser(spec), recursive=True) if os.path.isfile(p))
        return Found(found, [] if found else [Prediction(spec, error="no file matches this pattern")], [])
    return Found([], [Prediction(spec, error="no such file or folder")], [])


def load_picture(path: str) -> Prediction:
    """Read one picture; any problem becomes the Prediction's error, never an exception."""
    try:
        return Prediction(path, pixels=read_picture(path))
    except PictureError as err:
        return Prediction(path, error=str(err))


def load_pictures(paths: Sequence[str], workers: int) -> list[Prediction]:
    """Preprocess every picture, across `workers` processes when there are many."""
    if workers <= 1 or len(paths) < PARALLEL_FROM:
        return [load_picture(p) for p in paths]
    # fork: the workers inherit the imports; torch has run no op yet, so it has no threads to break
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        # small chunks: the workers finish together, neither waits long on the other's last chunk
        return list(pool.map(load_picture, paths, chunksize=max(1, min(CHUNK, len(paths) // (4 * workers)))))


class Predictor:
    """A network rebuilt from a checkpoint's stored settings and weights, with its input normalization."""

    def __init__(self, ckpt_path: str | os.PathLike, device: str = "auto") -> None:
        self.path = str(ckpt_path)
        self.device = resolve_device(device)
        ckpt = checkpoints.read(self.path)
        self.mean, self.std = checkpoints.normalization(ckpt)
        self.calibration = checkpoints.calibration(ckpt)
        # NHWC: oneDNN's convolutions are faster on CPU in this layout, as in training
        self.net = checkpoints.network(ckpt, self.path).to(self.device, memory_format=torch.channels_last)

    def thresholds(self, not_digit: float | str | None, unsure: float) -> Thresholds:
        """The settings as Thresholds: not_digit `auto` takes the checkpoint's own, chosen on its validation data."""
        if not_digit == "auto":
            return Thresholds(self.calibration.not_digit, unsure)
        return Thresholds(None if not_digit is None else float(not_digit), unsure)

    @torch.inference_mode()
    def classify(self, predictions: Iterable[Prediction], thresholds: Thresholds, batch_size: int = 256) -> None:
        """Fill in the answer of every prediction that has pixels, `batch_size` pictures per forward pass."""
        todo = [p for p in predictions if p.pixels is not None]
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            # (B, 1, 28, 28), normalized exactly as the training data was
            x = torch.from_numpy(np.stack([normalize(p.pixels, self.mean, self.std) for p in chunk]))
            x = x.to(self.device).contiguous(memory_format=torch.channels_last)
            logits = self.net(x).float().cpu().numpy()
            for p, answer in zip(chunk, answers(logits, self.calibration, thresholds)):
                p.answer = answer


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when present; an explicit device must exist."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MnistLitError(f"device={device} but no CUDA device is available; use device=cpu or device=auto")
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise MnistLitError(f"device={device} is not a device torch knows ({err})") from None


def format_table(predictions: Sequence[Prediction], topk: int) -> str:
    """A human-readable table: file, verdict, digit, confidence and the top-k digits."""
    rows = [("image", "verdict", "digit", "confidence", f"top-{topk} digits")]
    for p in predictions:
        if p.error or p.answer is None:
            rows.append((p.image, "error", "-", "-", str(p.error)))
            continue
        a = p.answer
        order = np.argsort(a.probs)[::-1][:topk]
        top = ", ".join(f"{k} {100 * a.probs[k]:.1f}%" for k in order)
        digit = "-" if a.digit is None else str(a.digit)
        rows.append((p.image, a.verdict, digit, f"{100 * a.confidence:.1f}%", top))
    width = max(len(r[0]) for r in rows)
    verdict = max(len(NOT_A_DIGIT), len("verdict"))
    return "\n".join(f"{r[0]:<{width}}  {r[1]:<{verdict}}  {r[2]:>5}  {r[3]:>10}  {r[4]}" for r in rows)
