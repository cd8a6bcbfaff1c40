"""serve.py under load, on loopback: requests per second and latency at 1, 16 and 64 concurrent
clients, errors, the idle server's CPU, its memory (PSS of every process) after the load, and
predict.py's folder throughput on the same pictures, in the same run. Optionally: --soak (memory
sampled every 30 s under 16 clients), --guard-cost (the key, a high rate limit and metrics against
none of them, alternating) and --sigterm (a SIGTERM during 64 clients).

Run: DATA_DIR=../shared/data .venv/bin/python bench/serve_load.py --ckpt <best.ckpt>
Every client sends user-style pictures from bench/user_digits.py as multipart uploads over a
kept-alive connection.
Each level is bounded by --requests and --max-seconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
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
from mnist_lit.serving.process import Server, descendants, multipart, pss_mb  # noqa: E402

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
        # utime, stime
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def idle_cpu(server: Server) -> float:
    """The server's CPU use while nobody asks it anything, as a share of one core."""
    pids = {server.proc.pid} | descendants(server.proc.pid)
    before = cpu_seconds(pids)
    time.sleep(IDLE_SECONDS)
    return (cpu_seconds(pids) - before) / IDLE_SECONDS


def client(
    port: int, bodies: list[tuple[bytes, str]], budget: list[int], deadline: float, out: list
) -> None:
    """Send requests until the shared budget or the time runs out; records (seconds, status) of
    each: 0 for a request sent but not answered, -1 for a connection refused."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    i = 0
    while time.monotonic() < deadline:
        with LOCK:
            if budget[0] <= 0:
                break
            budget[0] -= 1
        body, content_type = bodies[i % len(bodies)]
        i += 1
        start, sent = time.perf_counter(), False
        try:
            conn.request(
                "POST", "/predict", body=body, headers={"Content-Type": content_type, **HEADERS}
            )
            sent = True
            response = conn.getresponse()
            response.read()
            out.append((time.perf_counter() - start, response.status))
        except (OSError, http.client.HTTPException):
            out.append((time.perf_counter() - start, 0 if sent else -1))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.close()


LOCK = threading.Lock()
# the key, when the server under test has one
HEADERS: dict[str, str] = {}
KEY = "bench-key-0123456789abcdef"
GUARDED = (f"api_key={KEY}", "rate=100000", "burst=100000", "metrics=true")
UNGUARDED = ("metrics=false",)
SOAK_SAMPLE_SECONDS = 30.0


def load(port: int, bodies: list, clients: int, requests: int, max_seconds: float) -> dict:
    """`requests` requests from `clients` threads at once; req/s, latency percentiles and errors."""
    results: list = []
    budget, deadline = [requests], time.monotonic() + max_seconds
    threads = [
        threading.Thread(
            target=client, args=(port, bodies[k::clients] or bodies, budget, deadline, results)
        )
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
        "clients": clients,
        "requests": len(results),
        "rps": len(results) / wall,
        "p50": q[49],
        "p95": q[94],
        "p99": q[98],
        "errors": sum(status != 200 for _, status in results),
    }


def folder_rate(ckpt: str, paths: list[Path]) -> float:
    """predict.py's folder path after start-up: load the pictures in one process per core, classify
    in batches."""
    predictor = Predictor(ckpt, device="cpu")
    start = time.perf_counter()
    predictions = load_pictures([str(p) for p in paths], os.cpu_count() or 1)
    predictor.fill_answers(predictions, predictor.thresholds("auto", unsure=0.5))
    return len(paths) / (time.perf_counter() - start)


def soak(server: Server, bodies: list, seconds: float) -> list[float]:
    """16 clients for `seconds`, the server's PSS sampled every SOAK_SAMPLE_SECONDS (the first after
    warm-up)."""
    samples = [pss_mb(server.pids())]
    loader = threading.Thread(target=load, args=(server.port, bodies, 16, 10**9, seconds))
    loader.start()
    while loader.is_alive():
        loader.join(SOAK_SAMPLE_SECONDS)
        samples.append(pss_mb(server.pids()))
    return samples


def guard_cost(
    ckpt: Path, tmp: Path, bodies: list, requests: int, rounds: int = 2
) -> tuple[float, float]:
    """req/s at 16 clients without and with the key, a high rate limit and metrics: two servers,
    runs alternating."""
    plain, guarded = Server(ckpt, tmp, *UNGUARDED), Server(ckpt, tmp, *GUARDED)
    rates: dict[str, list[float]] = {"plain": [], "guarded": []}
    try:
        for _ in range(rounds):
            rates["plain"].append(load(plain.port, bodies, 16, requests, 300)["rps"])
            HEADERS["X-API-Key"] = KEY
            rates["guarded"].append(load(guarded.port, bodies, 16, requests, 300)["rps"])
            HEADERS.clear()
    finally:
        plain.stop()
        guarded.stop()
    return statistics.mean(rates["plain"]), statistics.mean(rates["guarded"])


def sigterm_under_load(ckpt: Path, tmp: Path, bodies: list, after: float = 5.0) -> dict:
    """64 clients, SIGTERM after `after` s: what the clients saw, what the server had received and
    not answered (its access log's lines without a 2xx or 4xx), and the seconds until every process
    was gone and the port free."""
    server = Server(ckpt, tmp, "access_log=true")
    results: list = []
    loader = threading.Thread(
        target=lambda: results.extend([load(server.port, bodies, 64, 10**9, after + 10)])
    )
    loader.start()
    time.sleep(after)
    stop_seconds = server.stop()
    loader.join()
    lines = [
        json.loads(line)
        for line in server.log.read_text().splitlines()
        if line.startswith('{"time"')
    ]
    return {
        "answered": results[0]["requests"] - results[0]["errors"],
        "client errors": results[0]["errors"],
        "received, not answered": sum(not (200 <= line["status"] < 500) for line in lines),
        "stop seconds": stop_seconds,
    }


def main() -> None:
    """Start the server, measure idle CPU, then each load level, memory and the options; then
    predict.py's rate."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--pictures", type=int, default=1000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument(
        "--requests", type=int, nargs="+", default=[500, 3000, 20000], help="per level"
    )
    parser.add_argument("--max-seconds", type=float, default=600.0, help="per level")
    parser.add_argument(
        "--soak", type=float, default=0.0, help="seconds of the soak at 16 clients (0: none)"
    )
    parser.add_argument(
        "--guard-cost", action="store_true", help="throughput with the key, rate limit and metrics"
    )
    parser.add_argument("--sigterm", action="store_true", help="SIGTERM during a 64-client run")
    parser.add_argument("--data", default=os.environ.get("DATA_DIR", "data"))
    parser.add_argument("overrides", nargs="*", help="serve.py settings, such as max_batch_size=32")
    args = parser.parse_args()
    images, labels = load_split(args.data, "test")
    ckpt = Path(args.ckpt).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_pictures(
            images[: args.pictures].numpy(), labels[: args.pictures].tolist(), Path(tmp) / "pics"
        )
        bodies = [multipart(p.read_bytes(), name=p.name) for p in paths]
        # it runs in tmp
        server = Server(ckpt, Path(tmp), *args.overrides)
        try:
            idle = idle_cpu(server)
            rows = [
                load(server.port, bodies, c, n, args.max_seconds)
                for c, n in zip(args.clients, args.requests)
            ]
            memory = pss_mb(server.pids())
            samples = soak(server, bodies, args.soak) if args.soak else []
        finally:
            server.stop()
        costs = (
            guard_cost(ckpt, Path(tmp), bodies, args.requests[min(1, len(args.requests) - 1)])
            if args.guard_cost
            else None
        )
        stopped = sigterm_under_load(ckpt, Path(tmp), bodies) if args.sigterm else None
        rate = folder_rate(args.ckpt, paths)
    print(
        f"{os.cpu_count()} CPU cores; {args.pictures} user-style pictures; serve.py "
        f"{' '.join(args.overrides)}\n"
    )
    print("| clients | requests | req/s | p50 | p95 | p99 | errors |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['clients']} | {r['requests']} | {r['rps']:.0f} | {1000 * r['p50']:.1f} ms | "
            f"{1000 * r['p95']:.1f} ms | {1000 * r['p99']:.1f} ms | {r['errors']} |"
        )
    print(f"\npredict.py's folder path on the same pictures: {rate:.0f} pictures/s")
    for r in rows:
        print(f"at {r['clients']} clients the server does {r['rps'] / rate:.2f}x that")
    print(f"idle server, over {IDLE_SECONDS:.0f} s: {100 * idle:.1f}% of one core")
    print(
        f"memory after {sum(r['requests'] for r in rows)} requests: {memory:.0f} MB (PSS, every "
        "process)"
    )
    if samples:
        print(
            f"soak, PSS every {SOAK_SAMPLE_SECONDS:.0f} s: "
            f"{', '.join(f'{m:.0f}' for m in samples)} MB; "
            f"growth after warm-up {100 * (max(samples) / samples[0] - 1):.1f}%"
        )
    if costs:
        print(
            f"16 clients: {costs[0]:.1f} req/s plain, {costs[1]:.1f} with key, rate limit and "
            "metrics "
            f"({100 * (1 - costs[1] / costs[0]):.1f}% cost)"
        )
    if stopped:
        print(f"SIGTERM during 64 clients: {json.dumps(stopped)}")


if __name__ == "__main__":
    main()
