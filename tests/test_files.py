"""Files that must never be torn.  Run: pytest tests/test_files.py"""

from __future__ import annotations

import json
import os

import pytest

from mnist_lit.files import atomic_write, write_json


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"test/acc": 0.5})

    def broken(f):
        f.write(b'{"half')
        raise OSError("disk full, say")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert json.loads(target.read_text()) == {"test/acc": 0.5}
    # no temporary file left behind
    assert os.listdir(tmp_path) == ["metrics.json"]
