"""serve.py as a user starts it, in a child process on a free loopback port, and the HTTP calls a
client makes: for the tests and bench/serve_load.py. stop() sends SIGTERM, as a service manager
does, and times the cleanup.

Try it: pytest tests/serving/test_serve.py
"""

from __future__ import annotations

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
from pathlib import Path

from PIL import Image, ImageDraw

# the checkout, where serve.py is
ROOT = Path(__file__).resolve().parents[2]
# the inference worker is a fresh interpreter that imports torch: slow on a busy CI machine
START_SECONDS = 120
# the bound for freeing the port after SIGTERM
STOP_SECONDS = 5
REQUEST_SECONDS = 30


def free_port() -> int:
    """A loopback port that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether the loopback `port` can be bound."""
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
    """Whether process `pid` runs (a zombie does not)."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET `url`: its status and body, an HTTP error's too."""
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers or {}), timeout=REQUEST_SECONDS
        ) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def post(
    url: str, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> tuple[int, dict]:
    """POST `body` to `url`: its status and JSON answer, an HTTP error's too."""
    headers = {"Content-Type": content_type, **(headers or {})}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_SECONDS) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def raw(port: int, data: bytes, wait: float = REQUEST_SECONDS) -> tuple[int, bytes]:
    """Send `data` as it is on a new loopback connection: the status and the whole reply (0 and b""
    for none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as conn:
        conn.sendall(data)
        reply = b""
        try:
            while chunk := conn.recv(65536):
                reply += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    try:
        return int(reply.split(b" ", 2)[1]), reply
    except (IndexError, ValueError):
        return 0, reply


def multipart(data: bytes, name: str = "digit.png", **fields: str) -> tuple[bytes, str]:
    """A multipart/form-data body with the picture in field "image", and any other fields."""
    boundary = "mnistlitboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def drawn_png(stroke: list[tuple[int, int]], width: int = 14) -> bytes:
    """A 200x200 PNG of one black pen stroke through `stroke`'s points on white."""
    img = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(img).line(stroke, fill="black", width=width, joint="curve")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# a stroke that reads as a 1
ONE = [(100, 30), (96, 170)]

# nesting levels of the deep-JSON cases
DEEP = 100_000


def request(
    path: str, body: bytes = b"", content_type: str | None = None, extra: str = ""
) -> bytes:
    """A whole HTTP/1.1 POST on a connection that closes after the answer."""
    kind = f"Content-Type: {content_type}\r\n" if content_type else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{kind}Content-Length: {len(body)}\r\n"
        f"{extra}Connection: close\r\n"
    )
    return head.encode() + b"\r\n" + body


def form_of(parts: list[bytes], boundary: str = "b0undary") -> tuple[bytes, str]:
    """A multipart body of the given parts."""
    body = (
        b"".join(f"--{boundary}\r\n".encode() + p + b"\r\n" for p in parts)
        + f"--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


FIELD = b'Content-Disposition: form-data; name="f"\r\n\r\nx'
FILE = (
    b'Content-Disposition: form-data; name="image"; filename="a.png"\r\n'
    b"Content-Type: image/png\r\n\r\nx"
)
# the bodies a hostile client sends to POST /predict, each with its content type
HOSTILE = {
    "5000 parts": form_of([FIELD] * 5000),
    "2000 file parts": form_of([FILE] * 2000),
    "multipart without a boundary": (b"--x\r\nhello\r\n--x--\r\n", "multipart/form-data"),
    "garbage after the boundary": (
        b"--b0undary\r\n\x00\xff garbage without headers",
        "multipart/form-data; boundary=b0undary",
    ),
    "5000 urlencoded fields": (
        "&".join(f"f{i}=1" for i in range(5000)).encode(),
        "application/x-www-form-urlencoded",
    ),
    "a deep JSON list": (b"[" * DEEP + b"]" * DEEP, "application/json"),
    "a deep JSON image": (b'{"image": ' + b"[" * DEEP + b"]" * DEEP + b"}", "application/json"),
    "a deep JSON dict": (b'{"a": ' * DEEP + b"1" + b"}" * DEEP, "application/json"),
    "a deep JSON list, no content type": (b"[" * DEEP + b"]" * DEEP, None),
}


def pss_mb(pids: set[int]) -> float:
    """The processes' proportional set size together, in MB: a page shared by several counts once in
    all."""
    total = 0
    for pid in pids:
        try:
            rollup = (Path("/proc") / str(pid) / "smaps_rollup").read_text()
        except OSError:
            continue
        total += sum(
            int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")
        )
    return total / 1024


class Server:
    """serve.py running as a user would start it; stop() sends SIGTERM, as a service manager
    does."""

    def __init__(
        self, ckpt: Path, cwd: Path, *overrides: str, env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable,
            str(ROOT / "serve.py"),
            f"ckpt={ckpt}",
            f"port={self.port}",
            *overrides,
        ]
        self.log = cwd / f"serve-{self.port}.log"
        # its metrics folder goes under cwd too
        env = {**os.environ, "TMPDIR": str(cwd), **(env or {})}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env
            )
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

    def pids(self) -> set[int]:
        """serve.py's process and every process below it."""
        return {self.proc.pid} | descendants(self.proc.pid)

    def stop(self) -> float:
        """SIGTERM; the seconds until the process and all its children are gone and the port is
        free."""
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
        raise AssertionError(
            f"after SIGTERM, children {left} still alive or port {self.port} still held"
        )
