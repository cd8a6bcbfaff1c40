"""serve.py's access control: the API key, the rate limit, CORS, /health for probes, and the refusal to serve beyond
loopback without a key.

Run: pytest tests/serving/test_access.py
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from mnist_lit.serving.access import Access, Bucket, Guard
from mnist_lit.serving.process import ONE, Server, drawn_png, get, multipart, post, raw
from tests.conftest import run_cli

KEY = "a-long-enough-test-key-0123456789"
BURST = 3
ORIGIN = "https://app.example.com"


@pytest.fixture(scope="module")
def guarded(synthetic_ckpt, tmp_path_factory):
    """A server with a key (from the environment, as a user keeps it out of shell history) and a low rate limit."""
    s = Server(
        synthetic_ckpt, tmp_path_factory.mktemp("guarded"), "rate=0.2", f"burst={BURST}", f"cors_origins=[{ORIGIN}]",
        "workers_per_device=1", env={"MNIST_LIT_API_KEY": KEY},
    )  # fmt: skip
    yield s
    s.stop()


@pytest.mark.server
def test_without_the_right_key_the_api_is_401_and_with_it_200(guarded):
    body = multipart(drawn_png(ONE))
    assert post(guarded.url + "/predict", *body)[0] == 401
    assert post(guarded.url + "/predict", *body, headers={"X-API-Key": KEY[:-1] + "x"})[0] == 401
    assert post(guarded.url + "/predict", *body, headers={"X-API-Key": KEY})[0] == 200
    assert post(guarded.url + "/predict", *body, headers={"Authorization": f"Bearer {KEY}"})[0] == 200
    assert get(guarded.url + "/metrics")[0] == 401
    assert get(guarded.url + "/metrics", headers={"X-API-Key": KEY})[0] == 200


@pytest.mark.server
def test_health_and_the_page_need_no_key(guarded):
    assert get(guarded.url + "/health") == (200, b"ok")
    assert get(guarded.url + "/")[0] == 200


@pytest.mark.server
def test_past_the_burst_a_client_gets_429_with_retry_after(guarded):
    body, kind = multipart(drawn_png(ONE))
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {KEY}\r\nContent-Type: {kind}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    statuses = [raw(guarded.port, head + body) for _ in range(BURST + 2)]  # the burst, and more at 0.2 per second
    assert [s for s, _ in statuses][-1] == 429
    assert b"retry-after: " in statuses[-1][1].lower()


@pytest.mark.server
def test_an_allowed_origin_gets_its_preflight_and_another_is_403(guarded):
    preflight = (
        "OPTIONS /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: {}\r\nAccess-Control-Request-Method: POST\r\n"
        "Access-Control-Request-Headers: x-api-key\r\nConnection: close\r\n\r\n"
    )
    status, reply = raw(guarded.port, preflight.format(ORIGIN).encode())
    assert status == 204
    assert f"access-control-allow-origin: {ORIGIN}".encode() in reply.lower()
    assert raw(guarded.port, preflight.format("https://evil.example").encode())[0] == 403


@pytest.mark.cli
def test_serving_beyond_loopback_without_a_key_is_refused_in_one_line(synthetic_ckpt, tmp_path):
    proc = run_cli("serve.py", f"ckpt={synthetic_ckpt}", "host=0.0.0.0", "api_key=null", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "without a key anyone there can use it" in lines[0]
    assert "auth=none" in lines[0]


@pytest.mark.cli
def test_a_short_api_key_is_refused(synthetic_ckpt, tmp_path):
    proc = run_cli("serve.py", f"ckpt={synthetic_ckpt}", "api_key=short", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    assert "api_key" in proc.stderr
    assert "at least 16 characters" in proc.stderr


def call(guard: Guard, path: str, headers: dict[bytes, bytes]) -> int:
    """One request through the Guard alone: the status it answers, or 200 from the app behind it."""
    sent = []

    async def send(message):
        if message["type"] == "http.response.start":
            sent.append(message["status"])

    scope = {"type": "http", "method": "GET", "path": path, "headers": list(headers.items()), "client": ("1.2.3.4", 1)}
    asyncio.run(guard(scope, None, send))
    return sent[0]


async def answered(scope, receive, send):
    """An app that answers 200."""
    await send({"type": "http.response.start", "status": 200, "headers": []})


def test_health_says_503_once_the_server_is_stopping():
    stopping = threading.Event()
    guard = Guard(answered, Access(stopping=stopping))
    host = {b"host": b"127.0.0.1:8000"}
    assert call(guard, "/health", host) == 200
    stopping.set()
    assert call(guard, "/health", host) == 503


def test_a_token_bucket_lets_its_burst_through_then_one_per_interval():
    bucket = Bucket(tokens=2)
    assert [bucket.take(rate=10.0, burst=2) for _ in range(2)] == [0.0, 0.0]
    wait = bucket.take(rate=10.0, burst=2)
    assert 0 < wait <= 0.1
