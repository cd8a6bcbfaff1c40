"""Bounded work per request: ASGI middleware that reads a POST /predict body under a size, time and
memory budget, checks its structure, and lets one heavy picture at a time through to the model.

Try it: curl -H "Content-Length: 99999999999" -X POST http://127.0.0.1:8000/predict
        (413 before any body is read)

Everything here answers a 4xx (or a 503 when the server is full) with {"error": ...}: LitServe would
answer a body its parser rejects with a bare 500 and a traceback in the log.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mnist_lit.reading.pictures import pixel_count
from mnist_lit.serving.access import API_PATH, answer, refuse
from mnist_lit.serving.api import HOW_TO_SEND, PICTURE_FIELD

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
# the form's picture
MAX_FILES = 1
# its other fields: "input", and "image" itself when sent as base64 text
MAX_FIELDS = 2
# {"image": "<base64>", "input": true} has one; base64 has none
MAX_JSON_BRACKETS = 8
# enough of a picture file for its header, JPEG's EXIF included
HEAD_BYTES = 64 * 1024
BUSY_RETRY_SECONDS = "1"
# a body larger than this is heavy whatever its pixels: parsing and decoding it is work
HEAVY_BYTES = 1024 * 1024


class Refused(Exception):
    """A request this middleware answers itself: its status and one-line error."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status, self.error = status, error


@dataclass
class Budget:
    """The limits on one front-end process's request bodies."""

    # one body
    max_bytes: int
    # to receive one whole body
    seconds: float
    # all bodies being read or answered at once
    in_flight_bytes: int
    # a picture larger than this (or a body over HEAVY_BYTES) waits for the other heavy ones
    heavy_pixels: int


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, refused past `limit` bytes (a chunked body declares no length)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refused(400, "the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"request body over the limit ({limit:,} bytes)")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def picture_head(scope: Scope, body: bytes) -> bytes:
    """The first bytes of the picture in a form or JSON body, after checking the body's structure;
    raises Refused."""
    kind = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
    if kind.startswith(FORM_TYPES):
        return await form_head(scope, body)
    # before parsing: 100,000 levels would recurse
    if body.count(b"{") + body.count(b"[") > MAX_JSON_BRACKETS:
        raise Refused(413, f"JSON body too deeply nested; {HOW_TO_SEND}")
    try:
        value = json.loads(body).get(PICTURE_FIELD)
    except (ValueError, RecursionError, AttributeError):
        # not JSON, or not an object
        raise Refused(400, HOW_TO_SEND) from None
    return b64_head(value)


def b64_head(value: object) -> bytes:
    """The first HEAD_BYTES of a base64 (or data: URL) picture; b"" when it is none: the model's
    worker says why."""
    if not isinstance(value, str):
        return b""
    text = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        return base64.b64decode(text[: HEAD_BYTES // 3 * 4])
    except (binascii.Error, ValueError):
        return b""


async def form_head(scope: Scope, body: bytes) -> bytes:
    """The picture's first bytes in a multipart or urlencoded form, parsed with starlette's limits;
    raises Refused."""
    sent = False

    async def once() -> Message:
        nonlocal sent
        message = {"type": "http.request", "body": b"" if sent else body, "more_body": False}
        sent = True
        return message

    try:
        form = await Request(scope, once).form(max_files=MAX_FILES, max_fields=MAX_FIELDS)
    except HTTPException as err:
        # python-multipart's complaint: no boundary, garbage, too many parts
        raise Refused(
            413 if "Too many" in str(err.detail) else 400, f"bad form: {err.detail}"
        ) from None
    try:
        value = form.get(PICTURE_FIELD)
        if hasattr(value, "read"):
            return await value.read(HEAD_BYTES)
        return b64_head(value)
    finally:
        await form.close()


class BodyLimits:
    """ASGI middleware for POST /predict: 413 for a declared length over the limit (from the header
    alone), 503 when the bodies in flight would pass the memory budget, 408 for a body that does not
    arrive in time, 400 or 413 for a form or JSON that is malformed or too complex; heavy pictures
    go to the model one at a time."""

    def __init__(self, app: ASGIApp, budget: Budget) -> None:
        self.app, self.budget = app, budget
        self.in_flight = 0
        self.heavy_lane = asyncio.Semaphore(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != API_PATH:
            await self.app(scope, receive, send)
            return
        try:
            reserved = self.reserve(dict(scope["headers"]).get(b"content-length"))
        except Refused as refused:
            headers = (
                [(b"retry-after", BUSY_RETRY_SECONDS.encode())] if refused.status == 503 else []
            )
            await refuse(scope, receive, send, refused.status, refused.error, headers)
            return
        try:
            await self.serve(scope, receive, send)
        finally:
            self.in_flight -= reserved

    def reserve(self, length: bytes | None) -> int:
        """Count this body's bytes against the budget; raises Refused when it is too large or the
        server is full."""
        if length is not None and not length.isdigit():
            raise Refused(400, "Content-Length is not a number")
        size = int(length) if length is not None else self.budget.max_bytes
        if size > self.budget.max_bytes:
            raise Refused(413, f"request body over the limit ({self.budget.max_bytes:,} bytes)")
        if self.in_flight + size > self.budget.in_flight_bytes:
            raise Refused(503, "the server is busy with other uploads; try again in a second")
        self.in_flight += size
        return size

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read and check the body in time, then hand it to the API: heavy pictures through the
        one-at-a-time lane."""
        try:
            body = await asyncio.wait_for(
                read_body(receive, self.budget.max_bytes), self.budget.seconds
            )
            head = await picture_head(scope, body)
        except asyncio.TimeoutError:
            await answer(
                send, 408, f"the request body did not arrive within {self.budget.seconds:g} s"
            )
            return
        except Refused as refused:
            await answer(send, refused.status, refused.error)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        if len(body) <= HEAVY_BYTES and (pixel_count(head) or 0) <= self.budget.heavy_pixels:
            await self.app(scope, replay, send)
            return
        # one heavy decode at a time leaves the other workers to everyone else
        async with self.heavy_lane:
            await self.app(scope, replay, send)
