"""Who may ask what: ASGI middleware in front of the API that checks each request's headers before
any body is read: the Host and Origin allow-lists (CORS), the API key, the rate limit, the routes
that are off, and /health while the server stops.

Try it: python serve.py host=0.0.0.0 api_key=s3cret
        curl -H "X-API-Key: s3cret" -F image=@digit.png
http://127.0.0.1:8000/predict
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
# the page asks for the key itself; liveness probes send none
OPEN_PATHS = frozenset({"/", "/health"})
CLOSED_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/info"})
API_PATH = "/predict"
# header lines in one request
MAX_HEADERS = 100
# all of a request's header names and values together; cookies stay well under
MAX_HEADER_BYTES = 32 * 1024
# rate buckets kept; the least recently seen client's goes first
MAX_CLIENTS = 10_000
BUSY = 503
UNAUTHORIZED = (b"www-authenticate", b"Bearer")
# of a refused body, read and dropped so that the client sees its answer
DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 5.0
# how long a browser may cache a CORS preflight's answer
PREFLIGHT_SECONDS = 600
ALLOWED_HEADERS = "content-type, x-api-key, authorization"


async def answer(
    send: Send, status: int, error: str | None, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send a whole response: {"error": ...} as JSON, or an empty body when `error` is None."""
    body = b"" if error is None else json.dumps({"error": error}).encode()
    head = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def drain(receive: Receive) -> None:
    """Read and drop what is left of a request body, up to DRAIN_BYTES and DRAIN_SECONDS: a client
    that sends its whole body before reading the answer (most do, without Expect: 100-continue)
    would otherwise get a connection reset instead of its 4xx."""

    async def drop() -> None:
        dropped = 0
        while dropped < DRAIN_BYTES:
            message = await receive()
            dropped += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body"):
                return

    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(drop(), DRAIN_SECONDS)


async def refuse(
    scope: Scope, receive: Receive, send: Send, status: int, error: str, headers: Iterable = ()
) -> None:
    """Answer a request's 4xx without keeping its body: the body is dropped first, unless the client
    waits for a 100 Continue (then none of it is ever sent). A 503 is not drained: a full server
    must refuse cheaply."""
    sent = dict(scope["headers"])
    has_body = (
        status != BUSY and sent.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in sent
    )
    if has_body and sent.get(b"expect", b"").lower() != b"100-continue":
        await drain(receive)
    await answer(send, status, error, headers)


def host_name(host: str) -> str:
    """The name in a Host header or an origin's netloc, without its port: "[::1]:8000" -> "::1"."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@dataclass
class Bucket:
    """A token bucket: `burst` requests at once, refilled at `rate` per second of `clock`."""

    tokens: float
    clock: Callable[[], float] = time.monotonic
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.stamp = self.clock()

    def take(self, rate: float, burst: int) -> float:
        """0 when a request may go now (and takes its token), else the seconds until one may."""
        now = self.clock()
        self.tokens = min(burst, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / rate


@dataclass
class Access:
    """The access settings one server applies: None in `hosts` means any Host."""

    api_key: str | None = None
    hosts: frozenset[str] | None = LOOPBACK_NAMES
    origins: frozenset[str] = frozenset()
    # requests per second per key, or per client address without a key; 0 is no limit
    rate: float = 0.0
    burst: int = 1
    docs: bool = False
    # an Event-like object: is_set() once SIGTERM came
    stopping: Any = None
    # what the rate buckets refill by; tests pass their own
    clock: Callable[[], float] = time.monotonic


class Guard:
    """ASGI middleware: every request passes the Host, Origin, key and rate checks in that order, or
    gets its 4xx here; CORS preflights of allowed origins are answered here too."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app, self.access = app, access
        self.key = access.api_key.encode() if access.api_key else None
        self.buckets: OrderedDict[str, Bucket] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        if (
            len(headers) > MAX_HEADERS
            or sum(len(k) + len(v) for k, v in headers) > MAX_HEADER_BYTES
        ):
            await refuse(
                scope,
                receive,
                send,
                431,
                f"headers too large (at most {MAX_HEADERS} lines, {MAX_HEADER_BYTES} bytes)",
            )
            return
        sent = dict(headers)
        cross = self.cross_origin(sent)
        refusal = self.refusal(scope, sent, cross)
        if refusal is not None:
            await refuse(scope, receive, send, *refusal)
            return
        if not cross:
            await self.app(scope, receive, send)
            return
        origin = sent[b"origin"]
        # an allowed origin's preflight
        if scope["method"] == "OPTIONS":
            await answer(send, 204, None, self.cors_headers(origin, preflight=True))
            return

        async def with_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", []), *self.cors_headers(origin)],
                }
            await send(message)

        await self.app(scope, receive, with_cors)

    def refusal(
        self, scope: Scope, headers: dict[bytes, bytes], cross: bool
    ) -> tuple[int, str, list] | None:
        """The status, error and headers that refuse this request (`cross`: sent from another
        origin's page), or None when it may pass."""
        path = scope["path"]
        if path == "/health" and self.access.stopping is not None and self.access.stopping.is_set():
            return 503, "the server is stopping", []
        if path in CLOSED_PATHS and not self.access.docs:
            return 404, "Not Found", []
        host = headers.get(b"host", b"").decode("latin-1")
        if self.access.hosts is not None and host_name(host).lower() not in self.access.hosts:
            return 400, f"this server does not answer for Host {host!r}", []
        if cross and headers[b"origin"].decode("latin-1") not in self.access.origins:
            return (
                403,
                "requests from other sites' pages are not allowed (see the cors_origins setting)",
                [],
            )
        needs_key = self.key is not None and path not in OPEN_PATHS and scope["method"] != "OPTIONS"
        # compare_digest takes constant time: no guessing the key from how fast a wrong one is
        # refused
        if needs_key and not hmac.compare_digest(self.sent_key(headers), self.key):
            return (
                401,
                "a valid API key is needed (header X-API-Key, or Authorization: Bearer)",
                [UNAUTHORIZED],
            )
        if path == API_PATH and scope["method"] == "POST" and self.access.rate > 0:
            wait = self.bucket(scope, headers).take(self.access.rate, self.access.burst)
            if wait > 0:
                return (
                    429,
                    "too many requests; slow down",
                    [(b"retry-after", str(math.ceil(wait)).encode())],
                )
        return None

    @staticmethod
    def sent_key(headers: dict[bytes, bytes]) -> bytes:
        """The key a request sent, in X-API-Key or as a bearer token; b"" for none."""
        if b"x-api-key" in headers:
            return headers[b"x-api-key"]
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        return token.strip() if scheme.lower() == b"bearer" else b""

    @staticmethod
    def cross_origin(headers: dict[bytes, bytes]) -> bool:
        """Whether a browser sent this from a page of another origin than this server's own."""
        origin = headers.get(b"origin")
        if origin is None:
            return False
        netloc = origin.decode("latin-1").partition("://")[2]
        return netloc != headers.get(b"host", b"").decode("latin-1")

    def cors_headers(self, origin: bytes, preflight: bool = False) -> list[tuple[bytes, bytes]]:
        """The CORS response headers for an allowed origin."""
        headers = [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
        if preflight:
            headers += [
                (b"access-control-allow-methods", b"GET, POST"),
                (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
                (b"access-control-max-age", str(PREFLIGHT_SECONDS).encode()),
            ]
        return headers

    def bucket(self, scope: Scope, headers: dict[bytes, bytes]) -> Bucket:
        """The rate bucket of this request's key, or of its client address when the server has no
        key."""
        who = (
            self.sent_key(headers).decode("latin-1")
            if self.key
            else (scope.get("client") or ("?",))[0]
        )
        bucket = self.buckets.pop(who, None) or Bucket(self.access.burst, self.access.clock)
        # most recently seen last
        self.buckets[who] = bucket
        if len(self.buckets) > MAX_CLIENTS:
            self.buckets.popitem(last=False)
        return bucket
