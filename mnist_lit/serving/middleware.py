"""ASGI middleware in front of LitServe: a body that is neither a form nor JSON gets a 400 that says how to send
a picture.

Try it: curl -X POST --data-binary @digit.png http://127.0.0.1:8000/predict
"""

from __future__ import annotations

import json

from fastapi import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mnist_lit.serving.api import HOW_TO_SEND

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


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
