"""Progress of long work (a large folder of pictures, the export's check on the test set), drawn on
stderr when it is a terminal and not at all otherwise, so that piped output (jsonl) stays clean.

Try it: python predict.py image=big_folder/ format=jsonl > answers.jsonl
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
# pictures: below this many, the work is over before a bar would help
SHOW_FROM = 64


def progress(items: Iterable[T], total: int, what: str, show_from: int = SHOW_FROM) -> Iterator[T]:
    """`items`, drawing a bar of `total` steps named `what` on stderr while they are consumed, when
    it is a terminal and there are at least `show_from` steps."""
    if total < show_from or not sys.stderr.isatty():
        yield from items
        return
    # only for a bar: its import costs a one-picture run more than the rest of its start
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc=what, file=sys.stderr, leave=False, dynamic_ncols=True)
