"""Progress bars show on a terminal only, so that piped output stays clean.  Run: pytest
tests/test_progress.py"""

from __future__ import annotations

import io

import pytest

from mnist_lit import progress


class Terminal(io.StringIO):
    """stderr as a terminal, or not."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("tty", "count", "shown"), [(True, 200, True), (False, 200, False), (True, 10, False)]
)
def test_a_bar_is_drawn_on_a_terminal_for_long_work_and_the_items_pass_unchanged(
    monkeypatch, tty, count, shown
):
    stderr = Terminal(tty)
    monkeypatch.setattr(progress.sys, "stderr", stderr)
    assert list(progress.progress(iter(range(count)), count, "reading pictures")) == list(
        range(count)
    )
    assert ("reading pictures" in stderr.getvalue()) == shown
    assert (stderr.getvalue() == "") == (not shown)
