"""serve.py against a hostile client on loopback: every malformed, oversized or slow request gets
its own 4xx (or a 503 when the server is full), never a 500 or a traceback, and good requests are
answered throughout.

Run: pytest tests/serving/test_limits.py
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from mnist_lit.serving.limits import BodyLimits, Budget
from mnist_lit.serving.observe import Observe
from mnist_lit.serving.process import HOSTILE, ONE, drawn_png, get, multipart, post, raw, request
from tests.serving.asgi import Reply, answered, call

# held open with half-sent headers while good requests are asked
SLOW_CONNECTIONS = 200
GOOD_REQUESTS = 20


@pytest.mark.server
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_body_gets_a_4xx_with_its_error_and_no_traceback(server, case):
    body, content_type = HOSTILE[case]
    status, reply = raw(server.port, request("/predict", body, content_type))
    assert 400 <= status < 500, reply[:300]
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]
    assert get(server.url + "/health")[0] == 200
    log = server.log.read_text()
    assert "Traceback" not in log
    assert "Internal server error" not in log


BIG_HEADERS = {
    "one 1 MB header": f"X-Big: {'a' * 1024 * 1024}\r\n",
    "5000 headers": "".join(f"X-H{i}: 1\r\n" for i in range(5000)),
}


@pytest.mark.server
@pytest.mark.parametrize(("case", "extra"), sorted(BIG_HEADERS.items()))
def test_too_many_or_too_large_headers_are_431(server, case, extra):
    status, _ = raw(server.port, request("/predict", b"{}", "application/json", extra))
    assert status == 431, case


@pytest.mark.server
def test_a_declared_length_over_the_limit_is_413_from_the_header_without_100_continue(server):
    head = (
        "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 10000000000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    status, reply = raw(server.port, head.encode(), wait=10)
    assert status == 413, reply[:200]
    assert b"100 Continue" not in reply


@pytest.mark.server
def test_headers_that_never_end_are_408(server):
    status, reply = raw(
        server.port, b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1", wait=10
    )
    assert status == 408, reply[:200]


@pytest.mark.server
def test_docs_openapi_and_info_are_off_and_head_of_the_page_is_200(server):
    for path in ("/docs", "/redoc", "/openapi.json", "/info"):
        assert get(server.url + path)[0] == 404, path
    status, reply = raw(
        server.port, b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    assert status == 200, reply[:200]


@pytest.mark.server
def test_a_foreign_host_is_refused_and_a_cross_site_form_post_is_403(server):
    body, kind = multipart(drawn_png(ONE))
    status, _ = raw(
        server.port,
        request("/predict", body, kind).replace(b"Host: 127.0.0.1", b"Host: evil.example"),
    )
    # DNS rebinding: a name that resolves to this machine is still not this server's
    assert status == 400
    cross = request("/predict", body, kind, "Origin: https://evil.example\r\n")
    assert raw(server.port, cross)[0] == 403
    same = request("/predict", body, kind, f"Origin: http://127.0.0.1:{server.port}\r\n")
    same = same.replace(b"Host: 127.0.0.1", f"Host: 127.0.0.1:{server.port}".encode())
    assert raw(server.port, same)[0] == 200


@pytest.mark.server
def test_a_picture_over_the_pixel_limit_is_400_from_its_header(server):
    buf = io.BytesIO()
    # 20 MP in a few KB: the default limit is 16 MP
    Image.new("L", (5000, 4000), 255).save(buf, format="PNG")
    status, answer = post(server.url + "/predict", *multipart(buf.getvalue()))
    assert status == 400
    assert "picture too large (20,000,000 pixels" in answer["error"]


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus' text format (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        found, _, rest = sample.partition("{")
        if found == name and ",".join(sorted(rest.rstrip("}").split(","))) == want:
            return float(value)
    return 0.0


@pytest.mark.server
def test_metrics_count_the_requests_by_status_and_verdict(server):
    before = get(server.url + "/metrics")[1].decode()
    for _ in range(3):
        assert post(server.url + "/predict", *multipart(drawn_png(ONE)))[0] == 200
    for _ in range(2):
        assert post(server.url + "/predict", *multipart(b"not a picture"))[0] == 400
    after = get(server.url + "/metrics")[1].decode()
    requests = "mnist_lit_requests_total"
    counted = {
        s: metric(after, requests, path="/predict", status=s)
        - metric(before, requests, path="/predict", status=s)
        for s in ("200", "400")
    }
    assert counted == {"200": 3, "400": 2}
    verdicts = sum(
        metric(after, "mnist_lit_verdicts_total", verdict=v)
        - metric(before, "mnist_lit_verdicts_total", verdict=v)
        for v in ("digit", "unsure", "not a digit")
    )
    assert verdicts == 3
    assert (
        metric(after, "mnist_lit_batch_size_count") - metric(before, "mnist_lit_batch_size_count")
        >= 1
    )
    assert "mnist_lit_requests_in_flight" in after
    assert metric(after, "mnist_lit_request_seconds_count", path="/predict") >= 5


@pytest.mark.server
def test_slow_connections_are_cut_while_good_requests_are_answered(server):
    slow = []
    try:
        for _ in range(SLOW_CONNECTIONS):
            conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            # and nothing more
            conn.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(conn)
        body = multipart(drawn_png(ONE))
        with ThreadPoolExecutor(4) as pool:
            statuses = list(
                pool.map(lambda _: post(server.url + "/predict", *body)[0], range(GOOD_REQUESTS))
            )
        assert statuses == [200] * GOOD_REQUESTS
        # header_timeout=2 in the fixture
        cut = [conn.recv(4096).split(b" ", 2)[1:2] for conn in slow]
        assert cut == [[b"408"]] * SLOW_CONNECTIONS
    finally:
        for conn in slow:
            conn.close()


# In this process, through the middleware's ASGI interface: no server, no clock but the event
# loop's.

MB = 1024 * 1024


def limits(seconds: float = 5.0) -> BodyLimits:
    """BodyLimits with a 10 MB body limit and a 12 MB in-flight budget, in front of an app that
    answers 200."""
    budget = Budget(
        max_bytes=10 * MB, seconds=seconds, in_flight_bytes=12 * MB, heavy_pixels=4_000_000
    )
    return BodyLimits(answered, budget)


def test_a_declared_length_over_the_limit_is_413_and_a_length_that_is_no_number_400():
    assert (
        call(
            limits(), "/predict", headers={"Content-Length": str(11 * MB), "Expect": "100-continue"}
        ).status
        == 413
    )
    reply = call(limits(), "/predict", headers={"Content-Length": "12abc"})
    assert reply.status == 400
    assert json.loads(reply.body)["error"] == "Content-Length is not a number"


def test_a_body_that_stops_arriving_is_408():
    async def run() -> Reply:
        never = asyncio.Event()
        replies = []

        async def receive():
            await never.wait()

        async def send(message):
            if message["type"] == "http.response.start":
                replies.append(Reply(message["status"]))

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/predict",
            "headers": [(b"content-length", b"9000")],
        }
        await limits(seconds=0.05)(scope, receive, send)
        return replies[0]

    assert asyncio.run(run()).status == 408


def test_uploads_past_the_in_flight_budget_get_503_with_retry_after_and_the_budget_comes_back():
    async def run() -> tuple[list[int], int]:
        middleware, arrived, statuses = limits(), asyncio.Event(), []
        nine = [(b"content-length", str(9 * MB).encode()), (b"content-type", b"application/json")]

        async def slow_body():
            await arrived.wait()
            return {"type": "http.request", "body": b"x" * (9 * MB), "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        scope = {"type": "http", "method": "POST", "path": "/predict", "headers": nine}
        holder = asyncio.create_task(middleware(scope, slow_body, send))
        # until the first upload holds its 9 MB
        while middleware.in_flight == 0:
            await asyncio.sleep(0)
        await middleware(
            {**scope, "headers": [*nine, (b"expect", b"100-continue")]}, slow_body, send
        )
        arrived.set()
        await holder
        return statuses, middleware.in_flight

    statuses, left = asyncio.run(run())
    # the second: 9 + 9 MB pass the 12 MB budget
    assert statuses[0] == 503
    # the first, once its body came: nine MB of "x" is no JSON picture
    assert statuses[1] == 400
    assert left == 0


def test_every_request_is_counted_by_path_status_and_verdict_and_logged_without_the_picture(capsys):
    from prometheus_client import REGISTRY

    def count(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    async def verdict_app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'{"verdict": "not a digit"}'})

    observed = Observe(verdict_app, access_log=True)
    before = count("mnist_lit_requests_total", path="/predict", status="200")
    said = count("mnist_lit_verdicts_total", verdict="not a digit")
    other = count("mnist_lit_requests_total", path="other", status="200")
    for _ in range(3):
        call(observed, "/predict", body=b"picture bytes")
    call(observed, "/wp-admin", "GET")
    assert count("mnist_lit_requests_total", path="/predict", status="200") - before == 3
    assert count("mnist_lit_verdicts_total", verdict="not a digit") - said == 3
    # labels stay bounded
    assert count("mnist_lit_requests_total", path="other", status="200") - other == 1
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    logged = [(line["path"], line["status"], line["verdict"]) for line in lines[:3]]
    assert logged == [("/predict", 200, "not a digit")] * 3
    assert "picture bytes" not in json.dumps(lines)
