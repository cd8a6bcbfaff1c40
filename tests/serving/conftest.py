"""The served checkpoint's server, shared by the serving tests: short time limits so the slow-client
tests are quick.

Run: pytest tests/serving
"""

from __future__ import annotations

import pytest

from mnist_lit.serving.process import Server

# 12 MB: one 10 MB upload at a time
LIMITS = ("header_timeout=2", "body_timeout=2", "max_in_flight_mb=12")


@pytest.fixture(scope="session")
def server(tiny, tmp_path_factory):
    """serve.py with the tiny fixed model on loopback, with the default access settings (no key, no
    rate limit)."""
    s = Server(
        tiny.ckpt,
        tmp_path_factory.mktemp("serve"),
        "max_batch_size=8",
        "batch_timeout=0.05",
        *LIMITS,
    )
    yield s
    if s.proc.poll() is None:
        s.stop()
