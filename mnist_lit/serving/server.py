"""serve.py's server: LitServe with the API, the access, body and metrics middleware, the drawing
pad at GET / and /metrics, sized to the machine.

Try it: python serve.py, then open http://127.0.0.1:8000
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import socket
import tempfile
from concurrent.futures import ProcessPoolExecutor
from importlib import resources
from pathlib import Path

import litserve as ls
from omegaconf import DictConfig
from starlette.responses import HTMLResponse

from mnist_lit import MnistLitError, devices
from mnist_lit.answer import Thresholds
from mnist_lit.inference.model import gpu_available, is_onnx
from mnist_lit.inference.predictor import Predictor
from mnist_lit.serving.access import LOOPBACK_NAMES, Access, Guard
from mnist_lit.serving.api import DigitAPI
from mnist_lit.serving.heap import return_big_buffers
from mnist_lit.serving.limits import BodyLimits, Budget
from mnist_lit.serving.observe import Observe, metrics_page, use_directory
from mnist_lit.serving.protocol import with_header_deadline
from mnist_lit.serving.shutdown import stop_on_sigterm

# the drawing pad, in mnist_lit/serving/static
PAGE = "pad.html"
MB = 1024 * 1024
LOOPBACK = "127.0.0.1"
NO_AUTH = "none"
# requests per second per client beyond loopback when rate=auto
OPEN_RATE = 20.0
# what one model worker needs on CPU, with room for its pictures
WORKER_MB = {"torch": 700, "onnx": 200}
# open files a front-end keeps for itself beyond its connections
FD_RESERVE = 128


def page() -> HTMLResponse:
    """The drawing pad: one self-contained HTML file (its own JS and CSS, nothing from a CDN)."""
    return HTMLResponse(
        (resources.files("mnist_lit.serving") / "static" / PAGE).read_text(encoding="utf-8")
    )


def check_port_free(host: str, port: int) -> None:
    """Refuse, in one line, a port that something else holds (the host and port settings were
    checked by the schema)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # as uvicorn binds: a closed socket's TIME_WAIT
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise MnistLitError(
                f"port {port} on {host} is in use ({err.strerror}); choose another, such as "
                f"port={port + 1}"
            ) from None


def check_exposure(cfg: DictConfig) -> None:
    """Refuse, in one line, to serve beyond loopback without a key, unless auth=none says so on
    purpose."""
    if cfg.host != LOOPBACK and not cfg.api_key and cfg.auth != NO_AUTH:
        raise MnistLitError(
            f"host={cfg.host} serves other machines, and without a key anyone there can use it: "
            "set api_key "
            "(or the MNIST_LIT_API_KEY environment variable), or auth=none to serve without one"
        )


def access(cfg: DictConfig, stopping: object) -> Access:
    """The Host, Origin, key and rate settings: on loopback, only loopback names and no rate limit
    by default."""
    named = frozenset(h.lower() for h in cfg.allowed_hosts)
    hosts = None if "*" in named or (cfg.host != LOOPBACK and not named) else LOOPBACK_NAMES | named
    rate = (0.0 if cfg.host == LOOPBACK else OPEN_RATE) if cfg.rate == "auto" else float(cfg.rate)
    return Access(
        api_key=cfg.api_key or None,
        hosts=hosts,
        origins=frozenset(cfg.cors_origins),
        rate=rate,
        burst=cfg.burst,
        docs=cfg.docs,
        stopping=stopping,
    )


def budget(cfg: DictConfig) -> Budget:
    """The body limits of one front-end process."""
    return Budget(
        max_bytes=int(cfg.max_upload_mb * MB),
        seconds=cfg.body_timeout,
        in_flight_bytes=int(cfg.max_in_flight_mb * MB),
        heavy_pixels=int(cfg.heavy_megapixels * 1e6),
    )


def read_model_settings(
    ckpt: str, not_digit: object, unsure: float, accelerator: str
) -> tuple[Thresholds, bool]:
    """The checkpoint's thresholds and whether it runs on the CPU (this loads it, so it also checks
    it)."""
    thresholds = Predictor(ckpt, device="cpu").thresholds(not_digit, unsure)
    return thresholds, devices.on_cpu(accelerator, lambda: gpu_available(ckpt))


def check_model(cfg: DictConfig, ckpt: str) -> tuple[Thresholds, bool]:
    """read_model_settings in a short-lived child process: torch's pages (about 300 MB) then never
    join this process, whose HTTP front-ends are forked from it."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as child:
        return child.submit(
            read_model_settings, ckpt, cfg.not_digit, cfg.unsure, cfg.accelerator
        ).result()


def available_mb() -> float:
    """Memory the machine can still give, in MB (MemAvailable; the free pages where /proc is
    missing)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / MB


def worker_count(setting: object, on_cpu: bool, ckpt: str) -> int:
    """Model workers: `auto` is one per GPU, or on CPU one per core as far as memory allows."""
    if setting != "auto":
        return int(setting)
    if not on_cpu:
        return 1
    affordable = int(available_mb() // WORKER_MB["onnx" if is_onnx(ckpt) else "torch"])
    # a picture is decoded in a worker: processes are the cores
    return max(1, min(os.cpu_count() or 1, affordable))


def connection_cap(cfg: DictConfig) -> int:
    """Connections each front-end holds at most (more get 503), within its open-file limit, raised
    as far as the system allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        soft = (
            hard if hard != resource.RLIM_INFINITY else max(soft, cfg.max_connections + FD_RESERVE)
        )
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return max(1, min(cfg.max_connections // cfg.api_servers, soft - FD_RESERVE))


def build_server(cfg: DictConfig, ckpt: str | os.PathLike, stopping: object = None) -> ls.LitServer:
    """The LitServer for `ckpt`: the pad's page at / (ahead of LitServe's own GET /), /metrics, and
    the middleware."""
    thresholds, on_cpu = check_model(cfg, str(ckpt))
    workers = worker_count(cfg.workers_per_device, on_cpu, str(ckpt))
    cores = os.cpu_count() or 1
    api = DigitAPI(
        str(ckpt),
        thresholds,
        cpu_threads=max(1, cores // workers) if on_cpu else 0,
        read=cfg.read,
        max_pixels=int(cfg.max_megapixels * 1e6),
        max_batch_size=cfg.max_batch_size,
        batch_timeout=cfg.batch_timeout,
        max_worker_mb=cfg.max_worker_mb,
    )
    server = ls.LitServer(
        api,
        # a GPU the model's runtime cannot use is no choice
        accelerator="cpu" if on_cpu else cfg.accelerator,
        devices=cfg.devices,
        workers_per_device=workers,
        # the schema typed these: floats and ints already
        timeout=cfg.timeout,
        # a worker past max_worker_mb ends; LitServe starts a fresh one
        restart_workers=cfg.max_worker_mb > 0,
        # FastAPI's /docs and /redoc go with it; they load from a CDN
        disable_openapi_url=not cfg.docs,
        middlewares=[
            (BodyLimits, {"budget": budget(cfg)}),
            (Guard, {"access": access(cfg, stopping)}),
            # added last: outermost, so it sees every answer
            (Observe, {"access_log": cfg.access_log}),
        ],
    )
    # LitServe's setting: how long uvicorn lets requests finish
    server.uvicorn_graceful_timeout = cfg.grace
    routes = server.app.router.routes
    server.app.add_api_route("/", page, methods=["GET", "HEAD"], response_class=HTMLResponse)
    # LitServe registered its own GET / ("litserve running") first
    routes.insert(0, routes.pop())
    if cfg.metrics:
        server.app.add_api_route("/metrics", metrics_page, methods=["GET"])
    return server


def serve(cfg: DictConfig, ckpt: str | os.PathLike) -> None:
    """Run the server until Ctrl-C or SIGTERM, every process sharing one metrics folder, removed at
    the end."""
    # before the front-ends fork: they inherit it
    return_big_buffers()
    metrics_dir = tempfile.mkdtemp(prefix="mnist-lit-metrics-")
    use_directory(metrics_dir)
    try:
        # forked front-ends see it set
        stopping = multiprocessing.get_context("fork").Event()
        server = build_server(cfg, ckpt, stopping)
        cap = connection_cap(cfg)
        stop_on_sigterm(server, cfg.port, stopping, cfg.grace)
        server.run(
            host=cfg.host,
            port=cfg.port,
            num_api_servers=cfg.api_servers,
            log_level=cfg.log_level,
            generate_client_file=False,
            timeout_keep_alive=cfg.keep_alive,
            limit_concurrency=cap,
            http=with_header_deadline(cfg.header_timeout),
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
