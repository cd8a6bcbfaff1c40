"""serve.py under load, on loopback: requests per second and latency at 1, 8 and 32 concurrent clients, errors,
the idle server's CPU, and predict.py's folder throughput on the same pictures, in the same run.

Run: DATA_DIR=../shared/data .venv/bin/python bench/serve_load.py --ckpt outputs/runs/<run>/checkpoints/best.ckpt
Every client sends user-style pictures from bench/user_digits.py as multipart uploads over a kept-alive connection.
Each level is bounded by --requests and --max-seconds.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mnist_lit.data.idx import load_split  # noqa: E402
from mnist_lit.inference.predictor import Predictor  # noqa: E402
from mnist_lit.inference.sources import load_pictures  # noqa: E402
from mnist_lit.reading.samples import write_pictures  # noqa: E402
from mnist_lit.serving.process import Server, descendants, multipart  # noqa: E402

IDLE_SECONDS = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: set[int]) -> float:
    """User plus system CPU seconds of the processes, from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def idle_cpu(server: Server) -> float:
    """The server's CPU use while nobody asks it anything, as a share of one core."""
    pids = {server.proc.pid} | descendants(server.proc.pid)
    before = cpu_seconds(pids)
    time.sleep(IDLE_SECONDS)
    return (cpu_seconds(pids) - before) / IDLE_SECONDS


def client(port: int, bodies: list[tuple[bytes, str]], budget: list[int], deadline: float, out: list) -> None:
    """Send requests until the shared budget or the time runs out; records (seconds, status) of each."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    i = 0
    while time.monotonic() < deadline:
        with LOCK:
            if budget[0] <= 0:
                break
            budget[0] -= 1
        body, content_type = bodies[i % len(bodies)]
        i += 1
        start = time.perf_counter()
        try:
            conn.request("POST", "/predict", body=body, headers={"Content-Type": content_type})
            response = conn.getresponse()
            response.read()
            out.append((time.perf_counter() - start, response.status))
        except OSError:
            out.append((time.perf_counter() - start, 0))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.close()


LOCK = threading.Lock()


def load(port: int, bodies: list, clients: int, requests: int, max_seconds: float) -> dict:
    """`requests` requests from `clients` threads at once; req/s, latency percentiles and errors."""
    results: list = []
    budget, deadline = [requests], time.monotonic() + max_seconds
    threads = [
        threading.Thread(target=client, args=(port, bodies[k::clients] or bodies, budget, deadline, results))
        for k in range(clients)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    latencies = sorted(s for s, _ in results)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "clients": clients, "requests": len(results), "rps": len(results) / wall,
        "p50": q[49], "p95": q[94], "p99": q[98], "errors": sum(status != 200 for _, status in results),
    }  # fmt: skip


def folder_rate(ckpt: str, paths: list[Path]) -> float:
    """predict.py's folder path after start-up: load the pictures in one process per core, classify in batches."""
    predictor = Predictor(ckpt, device="cpu")
    start = time.perf_counter()
    predictions = load_pictures([str(p) for p in paths], os.cpu_count() or 1)
    predictor.classify(predictions, predictor.thresholds("auto", unsure=0.5))
    return len(paths) / (time.perf_counter() - start)


def main() -> None:
    """Start the server, measure idle CPU, then each load level, then predict.py's folder rate."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--pictures", type=int, default=1000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, nargs="+", default=[500, 2000, 5000], help="per level")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="per level")
    parser.add_argument("--data", default=os.environ.get("DATA_DIR", "data"))
    parser.add_argument("overrides", nargs="*", help="serve.py settings, such as max_batch_size=32")
    args = parser.parse_args()
    images, labels = load_split(args.data, "test")
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_pictures(images[: args.pictures].numpy(), labels[: args.pictures].tolist(), Path(tmp) / "pics")
        bodies = [multipart(p.read_bytes(), name=p.name) for p in paths]
        server = Server(Path(args.ckpt).resolve(), Path(tmp), *args.overrides)  # it runs in tmp
        try:
            idle = idle_cpu(server)
            rows = [load(server.port, bodies, c, n, args.max_seconds) for c, n in zip(args.clients, args.requests)]
        finally:
            server.stop()
        rate = folder_rate(args.ckpt, paths)
    print(f"{os.cpu_count()} CPU cores; {args.pictures} user-style pictures; serve.py {' '.join(args.overrides)}\n")
    print("| clients | requests | req/s | p50 | p95 | p99 | errors |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['clients']} | {r['requests']} | {r['rps']:.0f} | {1000 * r['p50']:.1f} ms | "
            f"{1000 * r['p95']:.1f} ms | {1000 * r['p99']:.1f} ms | {r['errors']} |"
        )
    print(f"\npredict.py's folder path on the same pictures: {rate:.0f} pictures/s")
    print(f"at {rows[-1]['clients']} clients the server does {rows[-1]['rps'] / rate:.2f}x that")
    print(f"idle server, over {IDLE_SECONDS:.0f} s: {100 * idle:.1f}% of one core")


if __name__ == "__main__":
    main()
