"""How every command-line script starts and ends: unknown config choices and user errors as one
line, and without console noise the user cannot act on.

Try it: python predict.py image=nowhere.png   (one line, `error: ...`, exit status 1)
"""

from __future__ import annotations

import logging
import re
import sys
import warnings
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import NoReturn, TypeVar

from omegaconf import DictConfig

from mnist_lit import MnistLitError

# importing it registers the schemas, before any script composes
from mnist_lit.schema import validate

T = TypeVar("T")

# What Lightning and torch print that a user of this app can do nothing about; each is matched
# narrowly, by its
# text, so that any other warning still shows.
# a plain config name; sweep syntax such as choice(...) is left to Hydra
CHOICE = re.compile(r"[\w-]+")
# the logger behind Lightning's rank_zero_info
LIGHTNING_INFO = "lightning.pytorch.utilities.rank_zero"
# Lightning's advertisements for its cloud products (litlogger, litmodels)
ADVERT = "💡 Tip:"
# Lightning's own pytree helper still builds torch's deprecated LeafSpec; nothing this app calls can
# change that
LEAFSPEC_DEPRECATION = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


def _not_an_advert(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(ADVERT)


def quiet() -> None:
    """Silence the known console noise that no setting of this app can act on."""
    logging.getLogger(LIGHTNING_INFO).addFilter(_not_an_advert)
    warnings.filterwarnings("ignore", message=LEAFSPEC_DEPRECATION, category=FutureWarning)


def fail(reason: object) -> NoReturn:
    """End the command with one line on stderr, `error: <reason>`, and exit status 1."""
    raise SystemExit(f"error: {reason}")


def command(task: Callable[[DictConfig], T]) -> Callable[[DictConfig], T]:
    """A @hydra.main task that first checks its config against the schema (`validate`), and whose
    MnistLitError ends the command as one line (`fail`), not as Hydra's report with a traceback."""

    @wraps(task)
    def guarded(cfg: DictConfig) -> T:
        try:
            validate(cfg)
            return task(cfg)
        except MnistLitError as err:
            fail(err)

    return guarded


def check_choices(args: list[str], conf: Path) -> None:
    """Refuse a `group=choice` argument that names no config in conf/group/ (or a --config-dir's
    group/), in one line; Hydra's own error would list its whole search path. Sweeps (`group=a,b`)
    are checked choice by choice; Hydra's groups, and runs that extend the search path otherwise,
    are left to Hydra."""
    if any(a.startswith(("hydra.searchpath", "+hydra.searchpath")) for a in args):
        return
    folders = [conf, *config_dirs(args)]
    for arg in args:
        group, eq, value = arg.lstrip("+").partition("=")
        if (
            not eq
            or group.startswith(("hydra", "-"))
            or not any((f / group).is_dir() for f in folders)
        ):
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
    """Call a @hydra.main entry point after refusing unknown config choices and silencing known
    noise, then exit with its status: 0, or the one its SystemExit carries."""
    quiet()
    check_choices(sys.argv[1:], Path(sys.argv[0]).resolve().parent / "conf")
    main()
    sys.exit(0)
