"""The pictures a command is given (a file, a folder or a glob), read into digits, in parallel when
there are many.

Try it: python predict.py image='scans/*.jpg'
"""

from __future__ import annotations

import functools
import glob
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from mnist_lit.inference.predictor import Prediction
from mnist_lit.progress import progress
from mnist_lit.reading.pictures import PictureError, list_pictures, read_digits

# below this many pictures, worker processes cost more than they save
PARALLEL_FROM = 64
# pictures handed to a worker at a time
CHUNK = 16


@dataclass
class Found:
    """The pictures a spec names, an entry with an error for each unusable spec, and the files
    skipped as not pictures (in a folder)."""

    paths: list[str]
    failed: list[Prediction]
    skipped: list[str]

    def skipped_line(self) -> str | None:
        """One line naming the files skipped, or None when there were none."""
        if not self.skipped:
            return None
        return (
            f"skipped {len(self.skipped)} file(s) that are not pictures: {', '.join(self.skipped)}"
        )


def find_images(spec: str) -> Found:
    """Paths named by a file, a folder (its pictures, sorted) or a glob; plus a failed entry per
    unusable spec."""
    path = Path(spec).expanduser()
    if path.is_dir():
        found, skipped = list_pictures(path)
        if not found:
            return Found([], [Prediction(spec, error="folder has no pictures")], skipped)
        return Found(found, [], skipped)
    if path.is_file():
        return Found([str(path)], [], [])
    if glob.has_magic(spec):
        found = sorted(
            p for p in glob.glob(os.path.expanduser(spec), recursive=True) if os.path.isfile(p)
        )
        return Found(
            found, [] if found else [Prediction(spec, error="no file matches this pattern")], []
        )
    return Found([], [Prediction(spec, error="no such file or folder")], [])


def load_picture(path: str, read: str = "auto") -> Prediction:
    """Read one picture's digits (`read`: auto, digit or number); any problem becomes the
    Prediction's error, never an exception."""
    try:
        reading = read_digits(path, read)
    except PictureError as err:
        return Prediction(path, error=str(err))
    return Prediction.of(path, reading)


def load_pictures(paths: Sequence[str], workers: int, read: str = "auto") -> list[Prediction]:
    """Preprocess every picture, across `workers` processes when there are many."""
    load = functools.partial(load_picture, read=read)
    if workers <= 1 or len(paths) < PARALLEL_FROM:
        return list(progress(map(load, paths), len(paths), "reading pictures"))
    # fork: the workers inherit the imports; call it before loading a model, whose runtime starts
    # threads
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        # small chunks: the workers finish together, neither waits long on the other's last chunk
        done = pool.map(load, paths, chunksize=max(1, min(CHUNK, len(paths) // (4 * workers))))
        return list(progress(done, len(paths), "reading pictures"))
