"""LitServe's batching loop without its idle polling: an idle worker waits for a request in one blocking get.

Try it: python serve.py, then watch an idle server's CPU use in top
"""

from __future__ import annotations

from queue import Empty, Queue
from typing import Any

import litserve as ls
from litserve.loops import BatchedLoop

IDLE_WAIT = 1.0  # seconds an idle worker blocks on the request queue at a time (a sentinel stops it sooner)


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
    """LitServe's batching loop, minus its idle polling. Its collect step asks the request queue (a proxy to a
    manager process) for a request every millisecond, waiting or not, which keeps about a tenth of a core busy on
    an idle server. Here an idle worker waits in one blocking get for the first request; then the batch fills for
    batch_timeout exactly as LitServe does it, through LitLoop's own get_batch_requests (public, in litserve.loops).
    LitServe's stop sentinel travels the same way, so LitServe's own collect step sees it and ends the loop."""

    def get_batch_requests(self, lit_api: ls.LitAPI, request_queue: Queue, transport: Any) -> tuple[list, list]:
        """The next batch, waiting for its first request without polling."""
        try:
            first = request_queue.get(timeout=IDLE_WAIT)
        except Empty:
            return [], []
        except (KeyboardInterrupt, EOFError, OSError):  # Ctrl-C reaches the whole process group; or the queue's
            raise SystemExit(0) from None  # manager is gone: the server is stopping, and so does this worker
        return super().get_batch_requests(lit_api, _Prefetched(first, request_queue), transport)
