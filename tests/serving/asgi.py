"""One HTTP request through an ASGI app in this process, without a server: for the middleware's
tests.

Run: pytest tests/serving/test_access.py
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message

# a documentation address: the client the middleware sees
CLIENT = ("203.0.113.7", 50000)


@dataclass
class Reply:
    """What the app sent back: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def call(
    app: ASGIApp,
    path: str,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    client: tuple[str, int] = CLIENT,
) -> Reply:
    """Send one request to `app` (Host 127.0.0.1 unless given) and collect its whole reply."""
    sent = {"host": "127.0.0.1", **(headers or {})}
    if body:
        sent.setdefault("content-length", str(len(body)))
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "client": client,
        "query_string": b"",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in sent.items()],
    }
    replies: list[Reply] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            names = {
                k.decode("latin-1").lower(): v.decode("latin-1")
                for k, v in message.get("headers", [])
            }
            replies.append(Reply(message["status"], names))
        elif message["type"] == "http.response.body":
            replies[-1].body += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return replies[0]


async def answered(scope, receive, send) -> None:  # noqa: ANN001
    """An app that reads the body and answers 200 "ok": what stands behind the middleware under
    test."""
    while (await receive()).get("more_body"):
        pass
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})
