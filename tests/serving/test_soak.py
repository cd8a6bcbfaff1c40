"""serve.py over thousands of requests: a model worker's memory stays flat, and a worker past
max_worker_mb is replaced between batches without failing a request.

Run: pytest -m soak
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import random
import threading
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from mnist_lit.serving.process import Server, descendants, multipart

pytestmark = [pytest.mark.server, pytest.mark.soak]

CLIENTS = 8
# distinct drawings, sent round and round
PICTURES = 200
# requests before the first reading: caches, pools and allocator arenas fill
WARM_UP = 400
# requests between the two readings
SOAK = 4000
# at most, whatever the count
SOAK_SECONDS = 300
# what a worker may grow by over SOAK requests after warm-up; with the garbage collector off it grew
# about 30 MB
GROWTH_MB = 8
# LitServe starts its model workers with spawn; nothing else of the server is
SPAWNED = "multiprocessing.spawn"


def drawings(count: int, seed: int = 0) -> list[tuple[bytes, str]]:
    """`count` varied request bodies: pen strokes of random shape, size and width, as uploads and as
    base64 JSON, and every tenth one not a picture at all (a 400 travels its own path through the
    worker)."""
    rng = random.Random(seed)
    bodies = []
    for i in range(count):
        if i % 10 == 9:
            bodies.append(multipart(b"not a picture %d" % i, name="notes.png"))
            continue
        side = rng.choice([120, 200, 280])
        img = Image.new("L", (side, side), 255)
        points = [(rng.randrange(side), rng.randrange(side)) for _ in range(rng.randint(2, 6))]
        ImageDraw.Draw(img).line(points, fill=0, width=rng.randint(4, 16), joint="curve")
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        if i % 3:
            bodies.append(multipart(buf.getvalue()))
        else:
            body = json.dumps(
                {"image": base64.b64encode(buf.getvalue()).decode(), "input": i % 2 == 0}
            )
            bodies.append((body.encode(), "application/json"))
    return bodies


def send(
    port: int, bodies: list[tuple[bytes, str]], count: int, deadline: float
) -> list[tuple[int, int]]:
    """`count` requests from CLIENTS kept-alive connections at once, until `deadline`: each body's
    index in `bodies` and the status it got (0 for no answer)."""
    statuses: list[tuple[int, int]] = []
    lock = threading.Lock()
    left = [count]

    def client(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = offset
        while time.monotonic() < deadline:
            with lock:
                if left[0] <= 0:
                    break
                left[0] -= 1
            index = i % len(bodies)
            body, kind = bodies[index]
            i += CLIENTS
            try:
                conn.request("POST", "/predict", body=body, headers={"Content-Type": kind})
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            with lock:
                statuses.append((index, status))
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def workers(server: Server) -> set[int]:
    """The process ids of the server's model workers."""
    found = set()
    for pid in descendants(server.proc.pid):
        try:
            if SPAWNED in (Path("/proc") / str(pid) / "cmdline").read_text():
                found.add(pid)
        except OSError:
            continue
    return found


def resident_mb(pid: int) -> float:
    """A process's resident memory, in MB."""
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def wrong_answers(
    bodies: list[tuple[bytes, str]], statuses: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The (index, status) pairs whose status is not the one their body deserves: 200, or 400 for no
    picture."""
    return [
        (i, status)
        for i, status in statuses
        if status != (400 if b"not a picture" in bodies[i][0] else 200)
    ]


def test_a_worker_memory_stays_flat_over_thousands_of_varied_requests(tiny, tmp_path):
    bodies = drawings(PICTURES)
    server = Server(tiny.ckpt, tmp_path, "workers_per_device=1", "max_worker_mb=0")
    try:
        deadline = time.monotonic() + SOAK_SECONDS
        warm = send(server.port, bodies, WARM_UP, deadline)
        before = {pid: resident_mb(pid) for pid in workers(server)}
        soaked = send(server.port, bodies, SOAK, deadline)
        after = {pid: resident_mb(pid) for pid in workers(server)}
    finally:
        server.stop()
    assert len(soaked) == SOAK, f"{len(soaked)} of {SOAK} requests in {SOAK_SECONDS} s"
    assert wrong_answers(bodies, warm + soaked) == []
    assert len(before) == 1
    # no worker was replaced: the same processes, measured twice
    assert after.keys() == before.keys()
    growth = {pid: round(after[pid] - before[pid], 1) for pid in before}
    print(f"worker memory over {SOAK} requests: {before} MB, then grown by {growth} MB")
    assert max(growth.values()) <= GROWTH_MB, f"MB grown per worker over {SOAK} requests: {growth}"


def test_a_worker_past_max_worker_mb_is_replaced_without_failing_a_request(tiny, tmp_path):
    # 1 MB: every worker is past it once it has answered its first batch
    server = Server(tiny.ckpt, tmp_path, "workers_per_device=1", "max_worker_mb=1", "timeout=120")
    bodies = drawings(20, seed=1)
    seen = set(workers(server))
    statuses = []
    try:
        deadline = time.monotonic() + SOAK_SECONDS
        for _ in range(3):
            statuses += send(server.port, bodies, len(bodies), deadline)
            seen |= workers(server)
    finally:
        server.stop()
    assert len(statuses) == 3 * len(bodies)
    assert wrong_answers(bodies, statuses) == []
    # the first worker and at least two that replaced one
    assert len(seen) >= 3, seen
