"""serve.py: the HTTP API and the page, against a real server on a free loopback port.

Run: pytest tests/test_serve.py
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.conftest import ROOT, run_cli

START_SECONDS = 120  # the inference worker is a fresh interpreter that imports torch: slow on a busy CI machine
STOP_SECONDS = 5  # the bound for freeing the port after SIGTERM
REQUEST_SECONDS = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def descendants(pid: int) -> set[int]:
    """Every process below pid, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=REQUEST_SECONDS) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def post(url: str, body: bytes, content_type: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_SECONDS) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def multipart(data: bytes, name: str = "digit.png", **fields: str) -> tuple[bytes, str]:
    """A multipart/form-data body with the picture in field "image", and any other fields."""
    boundary = "mnistlitboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def drawn_png(stroke: list[tuple[int, int]], width: int = 14) -> bytes:
    img = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(img).line(stroke, fill="black", width=width, joint="curve")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


ONE = [(100, 30), (96, 170)]


class Server:
    """serve.py running as a user would start it; stop() sends SIGTERM, as a service manager does."""

    def __init__(self, ckpt: Path, cwd: Path, *overrides: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, str(ROOT / "serve.py"), f"ckpt={ckpt}", f"port={self.port}", *overrides]
        self.log = cwd / f"serve-{self.port}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve.py exited: {self.log.read_text()}")
            try:
                if get(self.url + "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.25)
        self.proc.kill()
        raise AssertionError(f"serve.py not healthy in {START_SECONDS} s: {self.log.read_text()}")

    def stop(self) -> float:
        """SIGTERM; the seconds until the process and all its children are gone and the port is free."""
        children = descendants(self.proc.pid)
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=4 * STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        while time.monotonic() - start < 4 * STOP_SECONDS:
            if not any(alive(pid) for pid in children) and port_is_free(self.port):
                return time.monotonic() - start
            time.sleep(0.05)
        left = [pid for pid in children if alive(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"after SIGTERM, children {left} still alive or port {self.port} still held")


@pytest.fixture(scope="module")
def server(synthetic_ckpt, tmp_path_factory):
    s = Server(synthetic_ckpt, tmp_path_factory.mktemp("serve"), "max_batch_size=8", "batch_timeout=0.05")
    yield s
    if s.proc.poll() is None:
        s.stop()


def test_health_is_200_and_the_page_is_served_at_root(server):
    assert get(server.url + "/health") == (200, b"ok")
    status, body = get(server.url + "/")
    assert status == 200
    assert b"<canvas" in body
    assert b"litserve running" not in body


def test_an_upload_gets_the_same_answer_as_predict_py(server, synthetic_ckpt, tmp_path):
    path = tmp_path / "one.png"
    path.write_bytes(drawn_png(ONE))
    status, answer = post(server.url + "/predict", *multipart(path.read_bytes()))
    assert status == 200
    proc = run_cli("predict.py", f"image={path}", f"ckpt={synthetic_ckpt}", "format=jsonl", cwd=tmp_path)
    line = json.loads(proc.stdout)
    del line["image"]
    assert answer == line


def test_base64_json_and_a_data_url_get_the_same_answer_as_an_upload(server):
    data = drawn_png(ONE)
    _, uploaded = post(server.url + "/predict", *multipart(data))
    encoded = base64.b64encode(data).decode()
    for image in (encoded, "data:image/png;base64," + encoded):
        status, answer = post(server.url + "/predict", json.dumps({"image": image}).encode(), "application/json")
        assert status == 200
        assert answer == uploaded


def test_the_input_the_model_saw_comes_back_when_asked(server):
    status, answer = post(server.url + "/predict", *multipart(drawn_png(ONE), input="1"))
    assert status == 200
    seen = Image.open(io.BytesIO(base64.b64decode(answer["input"])))
    assert seen.size == (28, 28)
    assert seen.getextrema()[1] > 200  # white ink on black


def test_bad_bodies_in_a_batch_get_400_and_the_good_ones_their_answers(server):
    good = multipart(drawn_png(ONE))
    bad = [
        multipart(b"this is not a picture", name="notes.png"),
        (json.dumps({"image": "%%% not base64"}).encode(), "application/json"),
        (json.dumps({"picture": "wrong key"}).encode(), "application/json"),
        (b"{not json", "application/json"),
        multipart(drawn_png(ONE)[:300]),  # truncated
    ]
    requests = [good] * 6 + bad
    with ThreadPoolExecutor(len(requests)) as pool:  # at once: the server batches them together
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


def test_an_upload_over_the_limit_is_413(server):
    status, _ = post(server.url + "/predict", *multipart(os.urandom(11 * 1024 * 1024)))
    assert status == 413
    status, _ = post(
        server.url + "/predict", json.dumps({"image": "A" * (11 * 1024 * 1024)}).encode(), "application/json"
    )
    assert status == 413
    assert get(server.url + "/health")[0] == 200


def test_sigterm_stops_every_process_and_frees_the_port(synthetic_ckpt, tmp_path):
    server = Server(synthetic_ckpt, tmp_path)
    assert descendants(server.proc.pid)  # LitServe started worker processes
    assert server.stop() < STOP_SECONDS


def test_a_port_in_use_is_a_one_line_error(synthetic_ckpt, tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = run_cli("serve.py", f"ckpt={synthetic_ckpt}", f"port={port}", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use (Address already in use); choose another, such as port={port + 1}"
    ]
