"""Files that must never be torn: checkpoints, metrics.json, the sweep summary, an exported model.

Try it: pytest tests/test_files.py
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Write `path` through a temporary file beside it, flushed to disk, then renamed over it: a
    kill at any moment leaves the old file or the new one, never a torn one; parallel writers never
    see each other's halves."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        # after a failed write: no half-written file left behind
        tmp.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, data: dict[str, Any]) -> None:
    """`data` as indented JSON, written atomically."""
    atomic_write(
        path, lambda f: f.write((json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
    )
