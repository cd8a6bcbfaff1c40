"""A time limit on a new connection's request headers, which uvicorn does not have: a client that
opens a connection and sends its headers a byte at a time (or never) gets 408 and is closed, instead
of holding a socket for ever.

Try it: python serve.py, then `nc 127.0.0.1 8000` and wait: the 408 comes after header_timeout
        seconds

It wraps uvicorn's own HTTP protocol (uvicorn's `http` setting takes a protocol class) through
asyncio's public Protocol interface only; once the headers are in, uvicorn's keep-alive timeout and
BodyLimits' body deadline apply.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

HEADERS_END = b"\r\n\r\n"
TOO_SLOW_BODY = b'{"error": "the request headers did not arrive in time"}'
TOO_SLOW = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: " + str(len(TOO_SLOW_BODY)).encode() + b"\r\n\r\n" + TOO_SLOW_BODY
)


class HeaderDeadline(asyncio.Protocol):
    """uvicorn's HTTP protocol, with `seconds` for a connection's first request headers to
    arrive."""

    def __init__(self, seconds: float, **uvicorn_args: Any) -> None:
        self.inner = AutoHTTPProtocol(**uvicorn_args)
        self.seconds = seconds
        self.timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the clock, then hand the connection to uvicorn."""
        self.transport = transport
        self.timer = asyncio.get_running_loop().call_later(self.seconds, self.too_slow)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        """Stop the clock once the blank line that ends the headers has arrived."""
        if self.timer is not None:
            seen = self.tail + data
            if HEADERS_END in seen:
                self.stop_clock()
            else:
                self.tail = seen[-len(HEADERS_END) :]
        self.inner.data_received(data)

    def too_slow(self) -> None:
        """The headers are late: answer 408 and close."""
        self.timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(TOO_SLOW)
            self.transport.close()

    def stop_clock(self) -> None:
        """Cancel the header deadline."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection closed."""
        self.stop_clock()
        self.inner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        """The client closed its side."""
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        """The transport's buffer is full."""
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        """The transport's buffer drained."""
        self.inner.resume_writing()


def with_header_deadline(seconds: float) -> Callable[..., asyncio.Protocol]:
    """uvicorn's `http` setting: its protocol, with a deadline of `seconds` on a new connection's
    headers."""
    return functools.partial(HeaderDeadline, seconds)
