"""How every command-line script starts and ends: without collecting garbage during its imports (mnist_lit.startup
pauses it, `run` resumes it), without console noise the user cannot act on, with unknown config choices and user
errors as one line, and, once everything is written, without the interpreter's slow teardown.

Try it: time python predict.py image=<one picture>

After torch and Lightning are imported, a normal interpreter exit spends seconds freeing hundreds of thousands of
objects one by one, on every run; the operating system reclaims the memory at once. So, once the
script's work is done and the exit handlers have run (log files flushed, worker processes joined), the process ends
with os._exit. Anything unusual, such as a thread still running or an exception, takes the normal way out.
Daemon threads (tqdm's progress-bar monitor, for one) don't count: a normal exit does not wait for them either.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import NoReturn, TypeVar

from omegaconf import DictConfig

from mnist_lit import MnistLitError
from mnist_lit.schema import validate  # importing it registers the schemas, before any script composes

T = TypeVar("T")

# What Lightning and torch print that a user of this app can do nothing about; each is matched narrowly, by its
# text, so that any other warning still shows.
CHOICE = re.compile(r"[\w-]+")  # a plain config name; sweep syntax such as choice(...) is left to Hydra
LIGHTNING_INFO = "lightning.pytorch.utilities.rank_zero"  # the logger behind Lightning's rank_zero_info
ADVERT = "💡 Tip:"  # Lightning's advertisements for its cloud products (litlogger, litmodels)
# Lightning's own pytree helper still builds torch's deprecated LeafSpec; nothing this app calls can change that
LEAFSPEC_DEPRECATION = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


def _not_an_advert(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(ADVERT)


def quiet() -> None:
    """Silence the known console noise that no setting of this app can act on."""
    logging.getLogger(LIGHTNING_INFO).addFilter(_not_an_advert)
    warnings.filterwarnings("ignore", message=LEAFSPEC_DEPRECATION, category=FutureWarning)


def after_imports() -> None:
    """Turn garbage collection back on after a script's imports, during which it paused it; silence known noise.

    The objects that importing train.py creates live until exit, yet with the collector on, the imports ran
    several full collections over them as they arrived: a large share of every start-up.
    """
    gc.freeze()  # they stay out of every later collection too
    atexit.register(gc.unfreeze)  # a normal exit still frees them: native extensions (triton's) report leaks
    gc.enable()
    quiet()


def fail(reason: object) -> NoReturn:
    """End the command with one line on stderr, `error: <reason>`, and exit status 1."""
    raise SystemExit(f"error: {reason}")


def command(task: Callable[[DictConfig], T]) -> Callable[[DictConfig], T]:
    """A @hydra.main task that first checks its config against the schema (`validate`), and whose MnistLitError
    ends the command as one line (`fail`), not as Hydra's report with a traceback."""

    @wraps(task)
    def guarded(cfg: DictConfig) -> T:
        try:
            validate(cfg)
            return task(cfg)
        except MnistLitError as err:
            fail(err)

    return guarded


def check_choices(args: list[str], conf: Path) -> None:
    """Refuse a `group=choice` argument that names no config in conf/group/ (or a --config-dir's group/), in one
    line; Hydra's own error would list its whole search path. Sweeps (`group=a,b`) are checked choice by choice;
    Hydra's groups, and runs that extend the search path otherwise, are left to Hydra."""
    if any(a.startswith(("hydra.searchpath", "+hydra.searchpath")) for a in args):
        return
    folders = [conf, *config_dirs(args)]
    for arg in args:
        group, eq, value = arg.lstrip("+").partition("=")
        if not eq or group.startswith(("hydra", "-")) or not any((f / group).is_dir() for f in folders):
            continue
        known = sorted({p.stem for f in folders for p in (f / group).glob("*.yaml")})
        for choice in value.split(","):
            if CHOICE.fullmatch(choice) and choice != "null" and choice not in known:
                fail(f"{group}={choice} does not exist; choose one of {known}")


def config_dirs(args: list[str]) -> list[Path]:
    """The folders given with --config-dir / -cd, which add config groups and choices."""
    found = [Path(a.split("=", 1)[1]) for a in args if a.startswith("--config-dir=")]
    found += [Path(args[i + 1]) for i, a in enumerate(args[:-1]) if a in ("--config-dir", "-cd")]
    return found


def run(main: Callable[[], object]) -> NoReturn:
    """Call a @hydra.main entry point, once its script's imports are done, then exit with its status as
    `python script.py` would, only sooner."""
    after_imports()
    try:
        check_choices(sys.argv[1:], Path(sys.argv[0]).resolve().parent / "conf")
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
