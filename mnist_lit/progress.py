"""Progress of long work (a large folder of pictures, the export's check on the test set), drawn on stderr when it
is a terminal and not at all otherwise, so that piped output (jsonl) stays clean.

Try it: python predict.py image=big_folder/ format=jsonl > answers.jsonl
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
SHOW_FROM = 64  # pictures: below this many, the work is over before a bar would help


def progress(items: Iterable[T], total: int, what: str, show_from: int = SHOW_FROM) -> Iterator[T]:
    """`items`, drawing a bar of `total` steps named `what` on stderr while they are consumed, when it is a
    terminal (tqdm's disable=None) and there are at least `show_from` steps."""
    if total < show_from:
        yield from items
        return
    yield from tqdm(items, total=total, desc=what, file=sys.stderr, disable=None, leave=False, dynamic_ncols=True)
