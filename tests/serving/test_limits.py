"""serve.py against a hostile client on loopback: every malformed, oversized or slow request gets its own 4xx (or a
503 when the server is full), never a 500 or a traceback, and good requests are answered throughout.

Run: pytest tests/serving/test_limits.py
"""

from __future__ import annotations

import io
import json
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from mnist_lit.serving.process import HOSTILE, ONE, drawn_png, get, multipart, post, raw, request

SLOW_CONNECTIONS = 200  # held open with half-sent headers while good requests are asked
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
def test_a_body_that_stops_arriving_is_408(server):
    start = time.monotonic()
    status, reply = raw(
        server.port, request("/predict", b"{}", "application/json").replace(b"Length: 2", b"Length: 9000")
    )
    assert status == 408, reply[:200]
    assert time.monotonic() - start < 10  # body_timeout=2 in the fixture, far under the probe's wait


@pytest.mark.server
def test_headers_that_never_end_are_408(server):
    status, reply = raw(server.port, b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1", wait=10)
    assert status == 408, reply[:200]


@pytest.mark.server
def test_uploads_past_the_in_flight_budget_get_503_with_retry_after(server):
    declared = (
        "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 9000000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as holder:
        holder.sendall(declared.encode() + b'{"image": "')  # 9 MB of the 12 MB budget, arriving slowly
        time.sleep(0.3)
        status, reply = raw(
            server.port, declared.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n").encode(), wait=10
        )
        assert status == 503, reply[:200]
        assert re.search(rb"(?i)retry-after: \d+", reply)
        assert holder.recv(4096).split(b" ", 2)[1] == b"408"  # the slow one is cut at body_timeout


@pytest.mark.server
def test_docs_openapi_and_info_are_off_and_head_of_the_page_is_200(server):
    for path in ("/docs", "/redoc", "/openapi.json", "/info"):
        assert get(server.url + path)[0] == 404, path
    status, reply = raw(server.port, b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert status == 200, reply[:200]


@pytest.mark.server
def test_a_foreign_host_is_refused_and_a_cross_site_form_post_is_403(server):
    body, kind = multipart(drawn_png(ONE))
    status, _ = raw(server.port, request("/predict", body, kind).replace(b"Host: 127.0.0.1", b"Host: evil.example"))
    assert status == 400  # DNS rebinding: a name that resolves to this machine is still not this server's
    cross = request("/predict", body, kind, "Origin: https://evil.example\r\n")
    assert raw(server.port, cross)[0] == 403
    same = request("/predict", body, kind, f"Origin: http://127.0.0.1:{server.port}\r\n")
    same = same.replace(b"Host: 127.0.0.1", f"Host: 127.0.0.1:{server.port}".encode())
    assert raw(server.port, same)[0] == 200


@pytest.mark.server
def test_a_picture_over_the_pixel_limit_is_400_from_its_header(server):
    buf = io.BytesIO()
    Image.new("L", (5000, 4000), 255).save(buf, format="PNG")  # 20 MP in a few KB: the default limit is 16 MP
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
        s: metric(after, requests, path="/predict", status=s) - metric(before, requests, path="/predict", status=s)
        for s in ("200", "400")
    }
    assert counted == {"200": 3, "400": 2}
    verdicts = sum(
        metric(after, "mnist_lit_verdicts_total", verdict=v) - metric(before, "mnist_lit_verdicts_total", verdict=v)
        for v in ("digit", "unsure", "not a digit")
    )
    assert verdicts == 3
    assert metric(after, "mnist_lit_batch_size_count") - metric(before, "mnist_lit_batch_size_count") >= 1
    assert "mnist_lit_requests_in_flight" in after
    assert metric(after, "mnist_lit_request_seconds_count", path="/predict") >= 5


@pytest.mark.server
def test_slow_connections_are_cut_while_good_requests_are_answered(server):
    slow = []
    try:
        for _ in range(SLOW_CONNECTIONS):
            conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            conn.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and nothing more
            slow.append(conn)
        body = multipart(drawn_png(ONE))
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda _: post(server.url + "/predict", *body)[0], range(GOOD_REQUESTS)))
        assert statuses == [200] * GOOD_REQUESTS
        cut = [conn.recv(4096).split(b" ", 2)[1:2] for conn in slow]  # header_timeout=2 in the fixture
        assert cut == [[b"408"]] * SLOW_CONNECTIONS
    finally:
        for conn in slow:
            conn.close()
