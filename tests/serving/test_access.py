"""serve.py's access control: the API key, the rate limit, CORS, /health for probes, and the refusal
to serve beyond loopback without a key. The Guard is tested in this process, through its ASGI
interface; one real server shows that serve.py puts it in front of the API.

Run: pytest tests/serving/test_access.py
"""

from __future__ import annotations

import threading

import pytest

from mnist_lit.serving.access import Access, Bucket, Guard
from mnist_lit.serving.process import ONE, Server, drawn_png, multipart, post
from tests.conftest import run_cli
from tests.serving.asgi import answered, call

KEY = "a-long-enough-test-key-0123456789"
BURST = 3
# requests per second
RATE = 2.0
ORIGIN = "https://app.example.com"


class Clock:
    """A clock the test moves by hand: the token buckets refill by it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guard(**settings) -> Guard:  # noqa: ANN003
    """A Guard with these Access settings in front of an app that answers 200."""
    return Guard(answered, Access(**settings))


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"X-API-Key": KEY[:-1] + "x"}, 401),
        ({"Authorization": f"Bearer {KEY[:-1]}x"}, 401),
        ({"X-API-Key": KEY}, 200),
        ({"Authorization": f"Bearer {KEY}"}, 200),
        ({"Authorization": f"Basic {KEY}"}, 401),
    ],
)
def test_the_api_needs_the_right_key_in_either_header(headers, status):
    reply = call(guard(api_key=KEY), "/predict", headers=headers)
    assert reply.status == status
    if status == 401:
        assert reply.headers["www-authenticate"] == "Bearer"


def test_metrics_need_the_key_and_health_and_the_page_do_not():
    keyed = guard(api_key=KEY)
    assert call(keyed, "/metrics", "GET").status == 401
    assert call(keyed, "/metrics", "GET", {"X-API-Key": KEY}).status == 200
    assert call(keyed, "/health", "GET").status == 200
    assert call(keyed, "/", "GET").status == 200


def test_exactly_the_burst_passes_then_429_with_retry_after_until_the_bucket_refills():
    clock = Clock()
    limited = guard(api_key=KEY, rate=RATE, burst=BURST, clock=clock)
    key = {"X-API-Key": KEY}
    replies = [call(limited, "/predict", headers=key) for _ in range(BURST + 2)]
    assert [r.status for r in replies] == [200] * BURST + [429, 429]
    # 1 / RATE = 0.5 s, rounded up
    assert replies[-1].headers["retry-after"] == "1"
    clock.now += 1 / RATE
    assert [call(limited, "/predict", headers=key).status for _ in range(2)] == [200, 429]


def test_without_a_key_each_client_address_has_its_own_bucket():
    limited = guard(rate=RATE, burst=1, clock=Clock())
    first, second = ("198.51.100.1", 1), ("198.51.100.2", 1)
    assert [call(limited, "/predict", client=first).status for _ in range(2)] == [200, 429]
    assert call(limited, "/predict", client=second).status == 200


def test_an_allowed_origin_gets_its_preflight_and_cors_headers_and_another_is_403():
    cors = guard(api_key=KEY, origins=frozenset({ORIGIN}))
    asks = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key",
    }
    preflight = call(cors, "/predict", "OPTIONS", asks)
    assert preflight.status == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "x-api-key" in preflight.headers["access-control-allow-headers"]
    posted = call(cors, "/predict", headers={"Origin": ORIGIN, "X-API-Key": KEY})
    assert (posted.status, posted.headers["access-control-allow-origin"]) == (200, ORIGIN)
    assert (
        call(cors, "/predict", "OPTIONS", {**asks, "Origin": "https://evil.example"}).status == 403
    )


def test_a_foreign_host_is_400_and_the_server_own_origin_passes():
    plain = guard()
    assert call(plain, "/predict", headers={"Host": "evil.example"}).status == 400
    own = {"Host": "127.0.0.1:8000", "Origin": "http://127.0.0.1:8000"}
    assert call(plain, "/predict", headers=own).status == 200
    assert call(plain, "/predict", headers={**own, "Origin": "https://evil.example"}).status == 403


def test_health_says_503_once_the_server_is_stopping():
    stopping = threading.Event()
    probed = guard(stopping=stopping)
    assert call(probed, "/health", "GET").status == 200
    stopping.set()
    assert call(probed, "/health", "GET").status == 503


def test_a_token_bucket_lets_its_burst_through_then_one_per_interval():
    clock = Clock()
    bucket = Bucket(2, clock)
    # times in powers of two: exact in floating point
    assert [bucket.take(rate=4.0, burst=2) for _ in range(2)] == [0.0, 0.0]
    assert bucket.take(rate=4.0, burst=2) == 0.25
    clock.now += 0.125
    assert bucket.take(rate=4.0, burst=2) == 0.125
    clock.now += 0.125
    assert bucket.take(rate=4.0, burst=2) == 0.0
    assert bucket.take(rate=4.0, burst=2) == 0.25


@pytest.mark.server
def test_serve_py_puts_the_key_in_front_of_the_api(tiny, tmp_path):
    # the key from the environment, as a user keeps it out of shell history
    server = Server(tiny.ckpt, tmp_path, "workers_per_device=1", env={"MNIST_LIT_API_KEY": KEY})
    try:
        body = multipart(drawn_png(ONE))
        assert post(server.url + "/predict", *body)[0] == 401
        assert post(server.url + "/predict", *body, headers={"X-API-Key": KEY})[0] == 200
    finally:
        server.stop()


@pytest.mark.cli
def test_serving_beyond_loopback_without_a_key_is_refused_in_one_line(tiny, tmp_path):
    proc = run_cli(
        "serve.py", f"ckpt={tiny.ckpt}", "host=0.0.0.0", "api_key=null", cwd=tmp_path, timeout=60
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "without a key anyone there can use it" in lines[0]
    assert "auth=none" in lines[0]


@pytest.mark.cli
def test_a_short_api_key_is_refused(tiny, tmp_path):
    proc = run_cli("serve.py", f"ckpt={tiny.ckpt}", "api_key=short", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    assert "api_key" in proc.stderr
    assert "at least 16 characters" in proc.stderr
