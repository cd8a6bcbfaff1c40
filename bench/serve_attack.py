"""serve.py against a hostile client, on loopback: every malformed, oversized and slow request of
the probe, 1,000 slow connections, 4 clients sending the largest pictures allowed, and 48 clients
sending 9 MB bodies; with good requests' latency measured throughout, the server's memory sampled,
and its log checked for tracebacks.

Run: .venv/bin/python bench/serve_attack.py --ckpt <best.ckpt>
Every phase is bounded by --seconds; all traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mnist_lit.serving.process import (  # noqa: E402
    HOSTILE,
    ONE,
    Server,
    drawn_png,
    multipart,
    post,
    pss_mb,
    raw,
    request,
)

# good requests timed before each phase, as its unloaded baseline
GOOD_SAMPLES = 60
# memory sampling interval
SAMPLE_SECONDS = 0.25
BIG_BODY_MB = 9
# seconds the slow-body probe waits for its 408 (body_timeout is 30 by default)
BODY_WAIT = 60
# 16 MP: the default max_megapixels
HEAVY_SIDE = 4000


def good_p50(
    url: str, stop: threading.Event | None = None, count: int = GOOD_SAMPLES
) -> tuple[float, list[int]]:
    """Median latency of `count` good requests sent one after another (or until `stop`), and their
    statuses."""
    body, seconds, statuses = multipart(drawn_png(ONE)), [], []
    while len(seconds) < count and not (stop is not None and stop.is_set()):
        start = time.perf_counter()
        statuses.append(post(url + "/predict", *body)[0])
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), statuses


def probes(server: Server) -> dict[str, int]:
    """The status of each probe case: the hostile bodies, big headers, a huge declared length, slow
    headers and body."""
    found = {
        name: raw(server.port, request("/predict", *case))[0] for name, case in HOSTILE.items()
    }
    found["a 1 MB header"] = raw(
        server.port, request("/predict", b"{}", "application/json", f"X-Big: {'a' * 2**20}\r\n")
    )[0]
    found["5000 headers"] = raw(
        server.port, request("/predict", b"{}", "application/json", "X-H: 1\r\n" * 5000)
    )[0]
    huge = (
        b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Length: 10000000000\r\nExpect: 100-continue\r\n\r\n"
    )
    found["10 GB declared, no body"] = raw(server.port, huge)[0]
    slow_body = request("/predict", b"{}", "application/json").replace(b": 2\r", b": 9999\r")
    found["slow body"] = raw(server.port, slow_body, wait=BODY_WAIT)[0]
    found["headers that never end"] = raw(
        server.port, b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    )[0]
    return found


def hold_slow(port: int, count: int, stop: threading.Event, stats: dict) -> None:
    """Keep `count` connections sending their headers a byte at a time; reopen each one the server
    cuts."""
    conns: list[socket.socket | None] = [None] * count
    while not stop.is_set():
        for i in range(count):
            try:
                if conns[i] is None:
                    conns[i] = socket.create_connection(("127.0.0.1", port), timeout=5)
                    conns[i].setblocking(False)
                    conns[i].send(b"POST /predict HTTP/1.1\r\n")
                conns[i].send(b"X")
            except OSError:
                stats["cut"] = stats.get("cut", 0) + 1
                if conns[i] is not None:
                    conns[i].close()
                conns[i] = None
        stop.wait(0.5)
    for conn in conns:
        if conn is not None:
            conn.close()


def flood(url: str, body: tuple[bytes, str], stop: threading.Event, statuses: list) -> None:
    """Send `body` again and again until `stop`."""
    while not stop.is_set():
        try:
            statuses.append(post(url + "/predict", *body)[0])
        except OSError:
            statuses.append(0)


def sample_memory(server: Server, stop: threading.Event, out: list) -> None:
    """The server's PSS every SAMPLE_SECONDS until `stop`."""
    while not stop.is_set():
        each = {pid: pss_mb({pid}) for pid in server.pids()}
        out.append((sum(each.values()), each))
        stop.wait(SAMPLE_SECONDS)


def under(
    server: Server, seconds: float, threads: list[threading.Thread], stop: threading.Event
) -> dict:
    """Good requests' p50 and memory while `threads` attack for `seconds`."""
    memory: list[float] = []
    sampler = threading.Thread(target=sample_memory, args=(server, stop, memory))
    for t in [*threads, sampler]:
        t.start()
    # the attack under way
    time.sleep(min(2.0, seconds / 4))
    p50, statuses = good_p50(server.url, stop)
    time.sleep(max(0.0, seconds - 2.0))
    stop.set()
    for t in [*threads, sampler]:
        t.join()
    peak, each = max(memory, key=lambda m: m[0])
    names = {pid: process_name(pid) for pid in each}
    return {
        "p50": p50,
        "good_errors": sum(s != 200 for s in statuses),
        "peak_mb": peak,
        "peak_by_process": {f"{names[p]} {p}": round(mb) for p, mb in each.items()},
    }


def process_name(pid: int) -> str:
    """A short name for one of the server's processes, from its command line."""
    cmd = (
        (Path("/proc") / str(pid) / "cmdline")
        .read_bytes()
        .replace(b"\0", b" ")
        .decode(errors="replace")
    )
    return (
        "model worker"
        if "spawn_main" in cmd
        else "tracker"
        if "resource_tracker" in cmd
        else "serve.py"
    )


def heavy_picture() -> bytes:
    """A HEAVY_SIDE x HEAVY_SIDE PNG of a drawn 7: the largest picture the server takes by default,
    in a few KB."""
    img = Image.new("L", (HEAVY_SIDE, HEAVY_SIDE), 255)
    ImageDraw.Draw(img).line([(800, 800), (3200, 800), (1600, 3400)], fill=0, width=300)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def big_body() -> tuple[bytes, str]:
    """A BIG_BODY_MB JSON body: a noisy picture as base64."""
    side = int((BIG_BODY_MB * 2**20 * 3 / 4 / 3) ** 0.5)
    noise = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="PNG", compress_level=0)
    return json.dumps(
        {"image": base64.b64encode(buf.getvalue()).decode()}
    ).encode(), "application/json"


def phase(server: Server, name: str, seconds: float, make) -> dict:  # noqa: ANN001
    """Run one attack: `make(stop, statuses)` gives its threads."""
    stop, statuses = threading.Event(), []
    row = under(server, seconds, make(stop, statuses), stop)
    row["attack_statuses"] = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(f"{name}: {json.dumps(row)}", flush=True)
    return row


def main() -> None:
    """Start the server, then each phase; print a table row per figure."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--seconds", type=float, default=30.0, help="per attack phase")
    parser.add_argument("--slow", type=int, default=1000, help="slow connections")
    parser.add_argument("overrides", nargs="*", help="serve.py settings")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(args.ckpt).resolve(), Path(tmp), *args.overrides)
        try:
            # warm-up
            good_p50(server.url, count=200)
            idle_mb, (base, _) = pss_mb(server.pids()), good_p50(server.url)
            found = probes(server)
            slow_stats: dict = {}
            slow = phase(
                server,
                f"{args.slow} slow connections",
                args.seconds,
                lambda stop, st: [
                    threading.Thread(
                        target=hold_slow, args=(server.port, args.slow, stop, slow_stats)
                    )
                ],
            )
            heavy = multipart(heavy_picture())
            heavy_row = phase(
                server,
                "4 clients, 16 MP pictures",
                args.seconds,
                lambda stop, st: [
                    threading.Thread(target=flood, args=(server.url, heavy, stop, st))
                    for _ in range(4)
                ],
            )
            big = big_body()
            big_row = phase(
                server,
                f"48 clients, {BIG_BODY_MB} MB bodies",
                args.seconds,
                lambda stop, st: [
                    threading.Thread(target=flood, args=(server.url, big, stop, st))
                    for _ in range(48)
                ],
            )
        finally:
            server.stop()
        log = server.log.read_text()
    print(
        f"\nunloaded good p50 {1000 * base:.1f} ms; idle server {idle_mb:.0f} MB (PSS, every "
        "process)\n"
    )
    print("| probe | status |\n|---|---:|")
    for name, status in found.items():
        print(f"| {name} | {status} |")
    print(
        "\n| attack | good p50 | vs unloaded | good errors | peak memory | vs idle "
        "|\n|---|---:|---:|---:|---:|---:|"
    )
    for name, row in (
        ("slow connections", slow),
        ("heavy pictures", heavy_row),
        ("9 MB bodies", big_row),
    ):
        print(
            f"| {name} | {1000 * row['p50']:.1f} ms | {row['p50'] / base:.2f}x | "
            f"{row['good_errors']} | "
            f"{row['peak_mb']:.0f} MB | {row['peak_mb'] / idle_mb:.2f}x |"
        )
    print(f"\nslow connections cut and reopened: {slow_stats.get('cut', 0)}")
    fives = sum(s >= 500 and s != 503 for s in found.values()) + sum(
        n
        for row in (heavy_row, big_row)
        for s, n in row["attack_statuses"].items()
        if s >= 500 and s != 503
    )
    print(
        f"answers of 500 (503 'busy' aside): {fives}; tracebacks in the server log: "
        f"{log.count('Traceback')}"
    )


if __name__ == "__main__":
    main()
