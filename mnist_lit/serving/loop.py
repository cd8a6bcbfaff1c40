"""LitServe's batching loop without its idle polling, and with a memory limit: an idle worker waits
for a request in one blocking get, and a worker whose resident memory has passed `max_worker_mb`
ends between two batches, for LitServe (restart_workers) to start a fresh one.

Try it: python serve.py max_worker_mb=300, then send it pictures; the worker's process id
        changes, and no request fails
"""

from __future__ import annotations

import os
from queue import Empty, Queue
from typing import Any

import litserve as ls
from litserve.loops import BatchedLoop

# seconds an idle worker blocks on the request queue at a time (a sentinel stops it sooner)
IDLE_WAIT = 1.0
MB = 1024 * 1024
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def resident_mb() -> float:
    """This process's resident memory now, in MB (0 where /proc is missing: the limit then never
    applies)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * PAGE_BYTES / MB
    except (OSError, IndexError, ValueError):
        return 0.0


class _Prefetched:
    """A request queue whose first get() returns a request already taken from it."""

    def __init__(self, first: Any, queue: Queue) -> None:
        self.first, self.queue = first, queue

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """The prefetched request once, then the queue's."""
        if self.first is not None:
            first, self.first = self.first, None
            return first
        return self.queue.get(block, timeout)

    def get_nowait(self) -> Any:
        """The prefetched request once, then the queue's, without waiting."""
        return self.get(block=False)


class IdleLoop(BatchedLoop):
    """LitServe's batching loop, minus its idle polling. Its collect step asks the request queue (a
    proxy to a manager process) for a request every millisecond, waiting or not, which keeps about a
    tenth of a core busy on an idle server. Here an idle worker waits in one blocking get for the
    first request; then the batch fills for batch_timeout exactly as LitServe does it, through
    LitLoop's own get_batch_requests (public, in litserve.loops). LitServe's stop sentinel travels
    the same way, so LitServe's own collect step sees it and ends the loop.

    `max_worker_mb` (0: no limit) is checked once a batch has been answered, before the next is
    taken, when this worker holds no request: a worker past it exits, and LitServe's monitor
    (restart_workers) starts another in its place. Requests wait in the shared queue meanwhile, so
    none is lost. A worker answers at least one batch, so even a limit below its size at start lets
    requests through."""

    def __init__(self, max_worker_mb: float = 0.0) -> None:
        super().__init__()
        self.max_worker_mb = max_worker_mb
        self.answered = False

    def get_batch_requests(
        self, lit_api: ls.LitAPI, request_queue: Queue, transport: Any
    ) -> tuple[list, list]:
        """The next batch, waiting for its first request without polling; SystemExit when this
        worker is to go."""
        if self.answered and self.max_worker_mb and resident_mb() > self.max_worker_mb:
            raise SystemExit(0)
        try:
            first = request_queue.get(timeout=IDLE_WAIT)
        except Empty:
            return [], []
        except (KeyboardInterrupt, EOFError, OSError):
            # Ctrl-C reaches the whole process group; or the queue's
            # manager is gone: the server is stopping, and so does this worker
            raise SystemExit(0) from None
        batch, timed_out = super().get_batch_requests(
            lit_api, _Prefetched(first, request_queue), transport
        )
        # the loop answers this batch before it asks for the next
        self.answered = self.answered or bool(batch)
        return batch, timed_out
