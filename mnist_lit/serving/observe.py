"""What the server did: Prometheus metrics at GET /metrics (prometheus_client, in its multi-process
mode: the HTTP front-ends and the model's workers are separate processes) and an optional JSON
access log, one line per request.

Try it: python serve.py access_log=true, then curl http://127.0.0.1:8000/metrics
"""

from __future__ import annotations

import json
import os
import sys
import time
from functools import cache
from types import SimpleNamespace

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# prometheus_client reads it once, at its first import in each process
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# any other path is counted as "other": bounded labels
PATHS = frozenset({"/", "/health", "/predict", "/metrics"})
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
# a /predict answer read for its verdict; the 28x28 input makes it a few KB
MAX_ANSWER_BYTES = 64 * 1024


def use_directory(path: str) -> None:
    """Keep every process's metrics in `path`: call before anything imports prometheus_client."""
    os.environ[METRICS_DIR] = path


@cache
def metrics() -> SimpleNamespace:
    """This process's metrics, made on first use (after use_directory)."""
    from prometheus_client import Counter, Gauge, Histogram

    return SimpleNamespace(
        requests=Counter("mnist_lit_requests", "HTTP requests answered", ["path", "status"]),
        latency=Histogram(
            "mnist_lit_request_seconds",
            "time to answer a request",
            ["path"],
            buckets=LATENCY_BUCKETS,
        ),
        in_flight=Gauge(
            "mnist_lit_requests_in_flight", "requests being answered", multiprocess_mode="livesum"
        ),
        verdicts=Counter("mnist_lit_verdicts", "answers of POST /predict by verdict", ["verdict"]),
        batch=Histogram("mnist_lit_batch_size", "pictures per forward pass", buckets=BATCH_BUCKETS),
    )


def metrics_page(request: Request) -> Response:
    """GET /metrics: every process's metrics together, in Prometheus' text format."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        generate_latest,
        multiprocess,
    )

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def verdict(body: bytes) -> str | None:
    """The verdict of a /predict answer's JSON, or None."""
    try:
        found = json.loads(body).get("verdict")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


class Observe:
    """ASGI middleware, outside every other check: counts and times each request by path and status,
    counts the verdicts, and writes the access log's line (time, client, method, path, status,
    milliseconds, verdict; never a picture)."""

    def __init__(self, app: ASGIApp, access_log: bool = False) -> None:
        self.app, self.access_log = app, access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        m, path = metrics(), scope["path"] if scope["path"] in PATHS else "other"
        start, status, chunks = time.perf_counter(), 0, []

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif path == "/predict" and status == 200 and sum(map(len, chunks)) < MAX_ANSWER_BYTES:
                chunks.append(message.get("body", b""))
            await send(message)

        m.in_flight.inc()
        try:
            await self.app(scope, receive, watch)
        finally:
            m.in_flight.dec()
            seconds = time.perf_counter() - start
            said = verdict(b"".join(chunks)) if chunks else None
            m.requests.labels(path, str(status)).inc()
            m.latency.labels(path).observe(seconds)
            if said is not None:
                m.verdicts.labels(said).inc()
            if self.access_log:
                self.log(scope, status, seconds, said)

    @staticmethod
    def log(scope: Scope, status: int, seconds: float, said: str | None) -> None:
        """One JSON line on stderr."""
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "client": (scope.get("client") or ("",))[0],
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "ms": round(1000 * seconds, 1),
            "verdict": said,
        }
        sys.stderr.write(json.dumps(line) + "\n")
