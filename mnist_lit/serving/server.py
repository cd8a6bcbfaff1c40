"""serve.py's server: LitServe with the API, its middleware and the drawing pad at GET /, sized to the machine;
a SIGTERM stops every process it started.

Try it: python serve.py, then open http://127.0.0.1:8000
"""

from __future__ import annotations

import os
import signal
import socket
from importlib import resources

import litserve as ls
from omegaconf import DictConfig
from starlette.responses import HTMLResponse

from mnist_lit import MnistLitError, devices
from mnist_lit.inference.model import gpu_available
from mnist_lit.inference.predictor import Predictor
from mnist_lit.serving.api import DigitAPI
from mnist_lit.serving.middleware import JsonOrForm

PAGE = "pad.html"  # the drawing pad, in mnist_lit/serving/static
MB = 1024 * 1024


def page() -> HTMLResponse:
    """The drawing pad: one self-contained HTML file (its own JS and CSS, nothing from a CDN)."""
    return HTMLResponse((resources.files("mnist_lit.serving") / "static" / PAGE).read_text(encoding="utf-8"))


def check_port_free(host: str, port: int) -> None:
    """Refuse, in one line, a port that something else holds (the host and port settings were checked by the
    schema)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a closed socket's TIME_WAIT
        try:
            probe.bind((host, port))
        except OSError as err:
            raise MnistLitError(
                f"port {port} on {host} is in use ({err.strerror}); choose another, such as port={port + 1}"
            ) from None


def build_server(cfg: DictConfig, ckpt: str | os.PathLike) -> ls.LitServer:
    """The LitServer for `ckpt` with the pad's page at /, ahead of LitServe's own GET /."""
    threshold = Predictor(ckpt, device="cpu").thresholds(cfg.not_digit, cfg.unsure)  # also checks ckpt
    on_cpu = devices.on_cpu(cfg.accelerator, lambda: gpu_available(ckpt))
    cores = os.cpu_count() or 1
    # a picture's decoding and preprocessing run in the worker, one at a time: on CPU, processes are the parallelism
    workers = (cores if on_cpu else 1) if cfg.workers_per_device == "auto" else int(cfg.workers_per_device)
    api = DigitAPI(
        str(ckpt), threshold, cpu_threads=max(1, cores // workers) if on_cpu else 0, read=cfg.read,
        max_batch_size=cfg.max_batch_size, batch_timeout=cfg.batch_timeout,
    )  # fmt: skip
    server = ls.LitServer(
        api,
        accelerator="cpu" if on_cpu else cfg.accelerator,  # a GPU the model's runtime cannot use is no choice
        devices=cfg.devices,
        workers_per_device=workers,
        timeout=cfg.timeout,  # the schema typed these: floats and ints already
        max_payload_size=int(cfg.max_upload_mb * MB),
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
