"""Big buffers go back to the system when freed: a server process that once held a 9 MB upload
should not keep those pages for the rest of its life.

Try it: python bench/serve_attack.py --ckpt <ckpt>
        (the "9 MB bodies" row: peak memory against idle)

glibc's malloc serves an allocation above its mmap threshold from its own mapping, unmapped on free;
but it raises that threshold (up to 32 MB) each time such a buffer is freed, after which uploads and
decoded pictures come from the heap and stay there. Fixing the threshold keeps them mapped, and
returned.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt's parameter number, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
# bytes: every request body and picture above this is its own mapping
MMAP_THRESHOLD = 1024 * 1024


def return_big_buffers() -> bool:
    """Fix glibc's mmap threshold in this process; False where the C library is not glibc (nothing
    changes)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError, TypeError):
        # no libc found by that name, or one without mallopt (musl, macOS)
        return False
