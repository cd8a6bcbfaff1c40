"""The API on LitServe: POST /predict answers a picture as predict.py's jsonl line does (same
loader, same preprocessing, same answer).

Try it: curl -F image=@digit.png http://127.0.0.1:8000/predict

LitServe fails a whole batch when a hook raises (LitServe issue #340), so a request that is not a
readable picture travels through decode_request, predict and encode_response as a value, and only
its own response is a 400.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any

import litserve as ls
import numpy as np
from PIL import Image
from starlette.responses import JSONResponse

from mnist_lit.answer import Thresholds
from mnist_lit.inference.predictor import Prediction, Predictor
from mnist_lit.reading.pictures import MAX_PIXELS, PictureError, read_digits
from mnist_lit.serving.heap import return_big_buffers
from mnist_lit.serving.loop import IdleLoop
from mnist_lit.serving.observe import metrics

# the multipart field, or the JSON key, that holds the picture
PICTURE_FIELD = "image"
# ask for the 28x28 picture the model saw, as a base64 PNG (the drawing pad does)
INPUT_FLAG = "input"
HOW_TO_SEND = 'send the picture as a multipart field "image", or as JSON {"image": "<base64>"}'


@dataclass
class Item:
    """One request on its way through a batch: its Prediction (pixels, then the answer; or the error
    that becomes its 400), and whether it asked for the 28x28 input back."""

    prediction: Prediction
    send_input: bool = False


def picture_bytes(request: Any) -> bytes:
    """The picture in a request: a multipart upload's bytes, or the JSON body's base64 (a data: URL
    too)."""
    value = request.get(PICTURE_FIELD) if hasattr(request, "get") else None
    if value is None:
        raise PictureError(HOW_TO_SEND)
    # a multipart upload (starlette's UploadFile)
    if hasattr(value, "file"):
        value.file.seek(0)
        return value.file.read()
    if not isinstance(value, str):
        raise PictureError(HOW_TO_SEND)
    # "data:image/png;base64,...."
    text = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PictureError(f'"{PICTURE_FIELD}" is not valid base64') from None


def wants_input(request: Any) -> bool:
    """Whether the request asked for the 28x28 input (`input` true in JSON, or "1"/"true" in a
    form)."""
    flag = request.get(INPUT_FLAG) if hasattr(request, "get") else None
    return flag is True or (isinstance(flag, str) and flag.lower() in ("1", "true"))


def png_base64(pixels: np.ndarray) -> str:
    """A (28, 28) uint8 picture as base64 PNG."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


class DigitAPI(ls.LitAPI):
    """Reads each request's picture with predict.py's loader and answers a batch of them in one
    forward pass."""

    def __init__(
        self,
        ckpt: str,
        thresholds: Thresholds,
        device: str = "auto",
        cpu_threads: int = 0,
        read: str = "auto",
        max_pixels: int = MAX_PIXELS,
        max_worker_mb: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(loop=IdleLoop(max_worker_mb), **kwargs)
        self.ckpt = ckpt
        self.thresholds = thresholds
        self.device_setting = device
        self.cpu_threads = cpu_threads
        self.read = read
        self.max_pixels = max_pixels
        self.predictor: Predictor | None = None

    def setup(self, device: str) -> None:
        """Load the model on the device LitServe gives this worker, with `cpu_threads` threads on
        CPU."""
        return_big_buffers()
        device = device if self.device_setting == "auto" else self.device_setting
        self.predictor = Predictor(self.ckpt, device=device, threads=self.cpu_threads)

    def decode_request(self, request) -> Item:  # noqa: ANN001
        """The request's picture as MNIST's 28x28, or the reason it is none, as an Item; never
        raises. `request` stays unannotated: LitServe reads this annotation to choose how to parse
        the body, and without one it hands over the parsed form (multipart) or JSON."""
        try:
            prediction = Prediction.of(
                "", read_digits(picture_bytes(request), self.read, self.max_pixels)
            )
        except PictureError as err:
            prediction = Prediction("", error=str(err))
        return Item(prediction, send_input=wants_input(request))

    def predict(self, batch: list[Item]) -> list[Item]:
        """Answer every readable picture of the batch in one forward pass; the others pass
        through."""
        metrics().batch.observe(len(batch))
        self.predictor.fill_answers([item.prediction for item in batch], self.thresholds)
        return batch

    def encode_response(self, output: Item) -> JSONResponse:
        """predict.py's jsonl fields without `image` (200), or {"error": ...} (400)."""
        p = output.prediction
        if p.error or p.answer is None:
            return JSONResponse({"error": p.error}, status_code=400)
        body = p.fields()
        if output.send_input:
            body[INPUT_FLAG] = png_base64(p.model_input())
        return JSONResponse(body)
