"""The HTTP API on LitServe: POST /predict answers a picture as predict.py's jsonl line does (same loader, same
preprocessing, same answer), GET / is the drawing pad, GET /health says when the model is loaded.

Try it: python serve.py, then open http://127.0.0.1:8000

LitServe fails a whole batch when a hook raises (LitServe issue #340), so a request that is not a readable
picture travels through decode_request, predict and encode_response as a value, and only its own response is
a 400.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import signal
import socket
from dataclasses import dataclass
from importlib import resources
from queue import Empty, Queue
from typing import Any

import litserve as ls
import numpy as np
from fastapi import HTTPException
from litserve.loops.base import _StopLoopError, collate_requests
from litserve.loops.simple_loops import BatchedLoop
from omegaconf import DictConfig
from PIL import Image
from starlette.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mnist_lit import MnistLitError, checkpoints
from mnist_lit.answer import Thresholds, check_settings
from mnist_lit.pictures import PictureError, read_digits
from mnist_lit.predictor import Prediction, Predictor

FIELD = "image"  # the multipart field, or the JSON key, that holds the picture
INPUT_FLAG = "input"  # ask for the 28x28 picture the model saw, as a base64 PNG (the drawing pad does)
HOW_TO_SEND = 'send the picture as a multipart field "image", or as JSON {"image": "<base64>"}'
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
PAGE = "pad.html"  # the drawing pad, in mnist_lit/static
IDLE_WAIT = 1.0  # seconds an idle worker blocks on the request queue at a time (a sentinel stops it sooner)


@dataclass
class Item:
    """One request on its way through a batch: its Prediction (pixels, then the answer; or the error that becomes
    its 400), and whether it asked for the 28x28 input back."""

    prediction: Prediction
    send_input: bool = False


def picture_bytes(request: Any) -> bytes:
    """The picture in a request: a multipart upload's bytes, or the JSON body's base64 (a data: URL too)."""
    value = request.get(FIELD) if hasattr(request, "get") else None
    if value is None:
        raise PictureError(HOW_TO_SEND)
    if hasattr(value, "file"):  # a multipart upload (starlette's UploadFile)
        value.file.seek(0)
        return value.file.read()
    if not isinstance(value, str):
        raise PictureError(HOW_TO_SEND)
    text = value.split(",", 1)[1] if value.startswith("data:") else value  # "data:image/png;base64,...."
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PictureError(f'"{FIELD}" is not valid base64') from None


def wants_input(request: Any) -> bool:
    """Whether the request asked for the 28x28 input (`input` true in JSON, or "1"/"true" in a form)."""
    flag = request.get(INPUT_FLAG) if hasattr(request, "get") else None
    return flag is True or (isinstance(flag, str) and flag.lower() in ("1", "true"))


def png_base64(pixels: np.ndarray) -> str:
    """A (28, 28) uint8 picture as base64 PNG."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


class _Prefetched:
    """A request queue whose first get() returns a request already taken from it."""

    def __init__(self, first: Any, queue: Queue) -> None:
        self.first, self.queue = first, queue

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """The prefetched request once, then the queue's."""
        if self.first is not None:
            first, self.first = self.first, None
            return first
        return self.queue.get(block, timeout)

    def get_nowait(self) -> Any:
        """The prefetched request once, then the queue's, without waiting."""
        return self.get(block=False)


class IdleLoop(BatchedLoop):
    """LitServe's batching loop, minus its idle polling. Its collect step asks the request queue (a proxy to a
    manager process) for a request every millisecond, waiting or not, which keeps about a tenth of a core busy on
    an idle server. Here an idle worker waits in one blocking get for the first request; then the batch fills for
    batch_timeout exactly as LitServe does it."""

    def get_batch_requests(self, lit_api: ls.LitAPI, request_queue: Queue, transport: Any) -> tuple[list, list]:
        """The next batch, waiting for its first request without polling."""
        try:
            first = request_queue.get(timeout=IDLE_WAIT)
        except Empty:
            return [], []
        except (KeyboardInterrupt, EOFError, OSError):  # Ctrl-C reaches the whole process group; or the queue's
            raise _StopLoopError from None  # manager is gone: the server is stopping, and so does this worker
        return collate_requests(self, lit_api, _Prefetched(first, request_queue), transport)


class DigitAPI(ls.LitAPI):
    """Reads each request's picture with predict.py's loader and answers a batch of them in one forward pass."""

    def __init__(
        self, ckpt: str, thresholds: Thresholds, device: str = "auto", cpu_threads: int = 0, read: str = "auto",
        **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(loop=IdleLoop(), **kwargs)
        self.ckpt, self.thresholds, self.device_setting, self.cpu_threads = ckpt, thresholds, device, cpu_threads
        self.read = read
        self.predictor: Predictor | None = None

    def setup(self, device: str) -> None:
        """Load the model on the device LitServe gives this worker, with `cpu_threads` threads on CPU."""
        device = device if self.device_setting == "auto" else self.device_setting
        self.predictor = Predictor(self.ckpt, device=device, threads=self.cpu_threads)

    def decode_request(self, request) -> Item:  # noqa: ANN001
        """The request's picture as MNIST's 28x28, or the reason it is none, as an Item; never raises.
        `request` stays unannotated: LitServe reads this annotation to choose how to parse the body, and without
        one it hands over the parsed form (multipart) or JSON."""
        try:
            prediction = Prediction.of("", read_digits(picture_bytes(request), self.read))
        except PictureError as err:
            prediction = Prediction("", error=str(err))
        return Item(prediction, send_input=wants_input(request))

    def predict(self, batch: list[Item]) -> list[Item]:
        """Answer every readable picture of the batch in one forward pass; the others pass through."""
        self.predictor.classify([item.prediction for item in batch], self.thresholds)
        return batch

    def encode_response(self, output: Item) -> JSONResponse:
        """predict.py's jsonl fields without `image` (200), or {"error": ...} (400)."""
        p = output.prediction
        if p.error or p.answer is None:
            return JSONResponse({"error": p.error}, status_code=400)
        body = p.fields()
        if output.send_input:
            shown = [p.pixels] if p.pixels is not None else [piece.pixels for piece in p.reading.pieces]
            body[INPUT_FLAG] = png_base64(np.hstack(shown))
        return JSONResponse(body)


def page() -> HTMLResponse:
    """The drawing pad: one self-contained HTML file (its own JS and CSS, nothing from a CDN)."""
    return HTMLResponse(resources.files("mnist_lit").joinpath("static", PAGE).read_text(encoding="utf-8"))


class JsonOrForm:
    """ASGI middleware: a POST to the API whose body is neither a form nor valid JSON gets a 400 with how to send
    a picture. LitServe would parse it as JSON and answer a failure with a bare 500."""

    def __init__(self, app: ASGIApp, path: str = "/predict") -> None:
        self.app, self.path = app, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if headers.get(b"content-type", b"").decode("latin-1").startswith(FORM_TYPES):
            await self.app(scope, receive, send)
            return
        messages, body = [], b""
        try:
            while True:  # the whole body, through LitServe's size limit, which raises its 413 as it reads
                message = await receive()
                messages.append(message)
                body += message.get("body", b"")
                if message["type"] != "http.request" or not message.get("more_body"):
                    break
            json.loads(body)
        except HTTPException as err:
            await JSONResponse({"error": err.detail}, status_code=err.status_code)(scope, receive, send)
            return
        except ValueError:
            await JSONResponse({"error": HOW_TO_SEND}, status_code=400)(scope, receive, send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


LITSERVE_HOSTS = ("127.0.0.1", "0.0.0.0", "::")  # the only hosts LitServer.run accepts
MB = 1024 * 1024


def check_port(host: str, port: int) -> None:
    """Refuse, in one line, a host LitServe cannot bind or a port that something else holds."""
    if host not in LITSERVE_HOSTS:
        raise MnistLitError(f"host={host} is not one LitServe can serve on; use one of {', '.join(LITSERVE_HOSTS)}")
    if not 1024 <= port <= 65535:
        raise MnistLitError(f"port={port} is invalid: use a port from 1024 to 65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a closed socket's TIME_WAIT
        try:
            probe.bind((host, port))
        except OSError as err:
            raise MnistLitError(
                f"port {port} on {host} is in use ({err.strerror}); choose another, such as port={port + 1}"
            ) from None


def build_server(cfg: DictConfig, ckpt: str) -> ls.LitServer:
    """The LitServer for `ckpt` with the pad's page at /, ahead of LitServe's own GET /."""
    check_settings(cfg.not_digit, cfg.unsure, cfg.read)
    threshold = Predictor(ckpt, device="cpu").thresholds(cfg.not_digit, float(cfg.unsure))  # also checks ckpt
    on_cpu = cfg.accelerator == "cpu" or (cfg.accelerator == "auto" and not checkpoints.gpu_available(ckpt))
    cores = os.cpu_count() or 1
    # a picture's decoding and preprocessing run in the worker, one at a time: on CPU, processes are the parallelism
    workers = (cores if on_cpu else 1) if cfg.workers_per_device == "auto" else int(cfg.workers_per_device)
    api = DigitAPI(
        ckpt, threshold, cpu_threads=max(1, cores // workers) if on_cpu else 0, read=str(cfg.read),
        max_batch_size=int(cfg.max_batch_size), batch_timeout=float(cfg.batch_timeout),
    )  # fmt: skip
    server = ls.LitServer(
        api,
        accelerator="cpu" if on_cpu else cfg.accelerator,  # a GPU the model's runtime cannot use is no choice
        devices=cfg.devices,
        workers_per_device=workers,
        timeout=float(cfg.timeout),
        max_payload_size=int(float(cfg.max_upload_mb) * MB),
        middlewares=[JsonOrForm],
    )
    routes = server.app.router.routes
    server.app.add_api_route("/", page, methods=["GET"], response_class=HTMLResponse)
    routes.insert(0, routes.pop())  # LitServe registered its own GET / ("litserve running") first
    return server


def stop_on_sigterm() -> None:
    """Make SIGTERM stop the server as Ctrl-C does: LitServe then terminates and joins every worker process it
    started. Without this a SIGTERM ends the parent alone, and its workers live on, holding the port."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    # forked children (LitServe's HTTP servers) inherit the handler; uvicorn re-raises SIGTERM after its own
    # graceful stop, expecting the default action, not a KeyboardInterrupt traceback
    os.register_at_fork(after_in_child=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
