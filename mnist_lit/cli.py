"""How the command-line scripts start and end: without collecting garbage during their imports, and, once
everything is written, without the interpreter's slow teardown.

Try it: time python predict.py image=<one picture>

After torch and Lightning are imported, a normal interpreter exit spends 0.6 s (torch alone) to 1.5-2 s (Lightning)
freeing ~750k objects one by one, on every run; the operating system reclaims the memory at once. So, once the
script's work is done and the exit handlers have run (log files flushed, worker processes joined), the process ends
with os._exit. Anything unusual, such as a thread still running or an exception, takes the normal way out.
Daemon threads (tqdm's progress-bar monitor, for one) don't count: a normal exit does not wait for them either.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from collections.abc import Callable
from typing import NoReturn


def after_imports() -> None:
    """Turn garbage collection back on after a script's imports, during which it paused it.

    The ~750k objects that importing train.py creates live until exit, yet with the collector on, the imports ran
    seven full collections over them as they arrived: ~1 s of every start-up.
    """
    gc.freeze()  # they stay out of every later collection too
    atexit.register(gc.unfreeze)  # a normal exit still frees them: native extensions (triton's) report leaks
    gc.enable()


def run(main: Callable[[], object]) -> NoReturn:
    """Call a @hydra.main entry point, then exit with its status as `python script.py` would, only sooner."""
    try:
        main()
        status = 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            status = stop.code or 0
        else:  # SystemExit("message"): Python prints the message and exits 1
            print(stop.code, file=sys.stderr)
            status = 1
    if any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(status)  # a thread may still be writing: let the interpreter join it
    atexit._run_exitfuncs()  # what a normal exit runs first: logging.shutdown, multiprocessing joins, ...
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
