"""serve.py: the HTTP API and the page, against a real server on a free loopback port.

Run: pytest tests/serving/test_serve.py
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from mnist_lit.serving.process import (
    ONE,
    STOP_SECONDS,
    Server,
    descendants,
    drawn_png,
    get,
    multipart,
    post,
)
from tests.conftest import TIME_FACTOR, approx_answer, poll, run_cli


@pytest.mark.server
def test_health_is_200_and_the_page_is_served_at_root(server):
    assert get(server.url + "/health") == (200, b"ok")
    status, body = get(server.url + "/")
    assert status == 200
    assert b"<canvas" in body
    assert b"litserve running" not in body


@pytest.mark.server
def test_every_upload_gets_the_answer_predict_py_recorded_for_it(server, tiny):
    recorded = tiny.recorded()
    for name, answer in recorded.items():
        status, got = post(
            server.url + "/predict", *multipart((tiny.pictures / name).read_bytes(), name=name)
        )
        assert status == 200
        # batched with others: the last decimal may move
        assert got == approx_answer(answer), name


@pytest.mark.server
def test_base64_json_and_a_data_url_get_the_same_answer_as_an_upload(server):
    data = drawn_png(ONE)
    _, uploaded = post(server.url + "/predict", *multipart(data))
    encoded = base64.b64encode(data).decode()
    for image in (encoded, "data:image/png;base64," + encoded):
        status, answer = post(
            server.url + "/predict", json.dumps({"image": image}).encode(), "application/json"
        )
        assert status == 200
        assert answer == uploaded


@pytest.mark.server
def test_the_input_the_model_saw_comes_back_when_asked(server):
    status, answer = post(server.url + "/predict", *multipart(drawn_png(ONE), input="1"))
    assert status == 200
    seen = Image.open(io.BytesIO(base64.b64decode(answer["input"])))
    assert seen.size == (28, 28)
    # white ink on black
    assert seen.getextrema()[1] > 200


@pytest.mark.server
def test_bad_bodies_in_a_batch_get_400_and_the_good_ones_their_answers(server):
    good = multipart(drawn_png(ONE))
    bad = [
        multipart(b"this is not a picture", name="notes.png"),
        (json.dumps({"image": "%%% not base64"}).encode(), "application/json"),
        (json.dumps({"picture": "wrong key"}).encode(), "application/json"),
        (b"{not json", "application/json"),
        # truncated
        multipart(drawn_png(ONE)[:300]),
    ]
    requests = [good] * 6 + bad
    # at once: the server batches them together
    with ThreadPoolExecutor(len(requests)) as pool:
        results = list(pool.map(lambda r: post(server.url + "/predict", *r), requests))
    for status, body in results[:6]:
        assert status == 200
        assert body["verdict"] in ("digit", "unsure", "not a digit")
    messages = [body.get("error", "") for _, body in results[6:]]
    assert [status for status, _ in results[6:]] == [400] * len(bad), messages
    assert "not a picture" in messages[0]
    assert "not valid base64" in messages[1]
    assert 'send the picture as a multipart field "image"' in messages[2]
    assert 'send the picture as a multipart field "image"' in messages[3]
    assert "corrupt image" in messages[4]
    assert get(server.url + "/health")[0] == 200


@pytest.mark.server
def test_an_upload_over_the_limit_is_413(server):
    status, _ = post(server.url + "/predict", *multipart(os.urandom(11 * 1024 * 1024)))
    assert status == 413
    status, _ = post(
        server.url + "/predict",
        json.dumps({"image": "A" * (11 * 1024 * 1024)}).encode(),
        "application/json",
    )
    assert status == 413
    assert get(server.url + "/health")[0] == 200


@pytest.mark.server
def test_sigterm_stops_every_process_and_frees_the_port(tiny, tmp_path):
    server = Server(tiny.ckpt, tmp_path)
    # LitServe started worker processes
    assert descendants(server.proc.pid)
    assert server.stop() < STOP_SECONDS * TIME_FACTOR


STUCK_UPLOADS = 5
IN_FLIGHT = "mnist_lit_requests_in_flight"


def in_flight(server: Server) -> float:
    """Requests the server is answering now, by its own metrics, less the GET /metrics that asks."""
    page = get(server.url + "/metrics")[1].decode()
    return (
        sum(float(line.split()[-1]) for line in page.splitlines() if line.startswith(IN_FLIGHT)) - 1
    )


def refused(port: int) -> bool:
    """Whether a new connection to `port` is refused, or reset before any answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.recv(1)
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    except TimeoutError:
        return False
    return False


@pytest.mark.server
def test_sigterm_answers_what_it_received_cuts_stuck_uploads_and_refuses_new_connections(
    tiny, tmp_path
):
    server = Server(tiny.ckpt, tmp_path, "batch_timeout=1.5", "max_batch_size=16", "grace=2")
    stuck = []
    # each declares 1 MB and sends a few bytes of it
    for _ in range(STUCK_UPLOADS):
        conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        conn.sendall(
            b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n{"
        )
        stuck.append(conn)
    with ThreadPoolExecutor(2) as pool:
        # waits 1.5 s for its batch
        answer = pool.submit(post, server.url + "/predict", *multipart(drawn_png(ONE)))
        # the server holds it now
        assert poll(lambda: in_flight(server) >= STUCK_UPLOADS + 1, seconds=10)
        stopped = pool.submit(server.stop)
        # nothing listens any more
        assert poll(lambda: refused(server.port), seconds=STOP_SECONDS * TIME_FACTOR)
        assert answer.result()[0] == 200
        assert stopped.result() < STOP_SECONDS * TIME_FACTOR
    for conn in stuck:
        conn.close()


@pytest.mark.cli
def test_a_port_in_use_is_a_one_line_error(tiny, tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = run_cli("serve.py", f"ckpt={tiny.ckpt}", f"port={port}", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use (Address already in use); choose another, such "
        f"as port={port + 1}"
    ]
