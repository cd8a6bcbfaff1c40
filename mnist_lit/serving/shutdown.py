"""A graceful stop on SIGTERM, as a service manager sends it: the listening socket closes at once,
requests already received are answered, stuck uploads are cut after the grace period, and every
process goes.

Try it: python serve.py & sleep 20; kill %1   (the port is free again within a few seconds)
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import time
from pathlib import Path

# the name LitServe gives its HTTP front-end processes
FRONT_END = "LitServer-"
# for the front-ends to stop accepting before the shared socket is shut
SETTLE_SECONDS = 0.1
# seconds past the grace period that a front-end gets to exit
JOIN_MARGIN = 1.0


def stop_listening(port: int) -> None:
    """Shut the listening socket on `port` that this process shares with its children: shutdown()
    acts on the socket itself, not on one process's handle, so the kernel refuses new connections at
    once (Linux; elsewhere the socket closes as the processes exit)."""
    fd_dir = Path("/proc/self/fd")
    for name in os.listdir(fd_dir) if fd_dir.is_dir() else []:
        try:
            sock = socket.socket(fileno=int(name))
        except (OSError, ValueError):
            # not a socket
            continue
        try:
            if (
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                and sock.getsockname()[1] == port
            ):
                sock.shutdown(socket.SHUT_RDWR)
        except (OSError, IndexError, TypeError):
            pass
        finally:
            # the handle stays LitServe's to close
            sock.detach()


def stop_on_sigterm(server: object, port: int, stopping: object, grace: float) -> None:
    """Make SIGTERM stop the server as Ctrl-C does, after a graceful stop of the HTTP front-ends;
    LitServe then terminates and joins every worker process it started."""

    def interrupt(signum: int, frame: object) -> None:
        # a second SIGTERM must not interrupt this one
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # LitServe's monitor must not replace the workers that the stop ends
        server.restart_workers = False
        # /health says 503 from now on
        stopping.set()
        fronts = [p for p in multiprocessing.active_children() if p.name.startswith(FRONT_END)]
        # uvicorn's own graceful stop: no new connections, answer the ones in flight
        for front in fronts:
            front.terminate()
        time.sleep(SETTLE_SECONDS)
        stop_listening(port)
        deadline = time.monotonic() + grace + JOIN_MARGIN
        for front in fronts:
            front.join(max(0.0, deadline - time.monotonic()))
        # LitServe's stop: the model workers and the queue manager
        raise KeyboardInterrupt

    def ctrl_c(signum: int, frame: object) -> None:
        # Ctrl-C ends the workers with everything else in the terminal's process group: none is to
        # be replaced
        server.restart_workers = False
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, ctrl_c)
    # forked children (LitServe's HTTP servers) inherit the handlers; uvicorn re-raises SIGTERM
    # after its own
    # graceful stop, expecting the default action, not a KeyboardInterrupt traceback
    os.register_at_fork(after_in_child=in_child)


def in_child() -> None:
    """A forked child's signal handling: Python's own, as before stop_on_sigterm."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
