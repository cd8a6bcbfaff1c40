"""`auto` means a CUDA GPU when the runtime has one.  Run: pytest tests/test_devices.py"""

from __future__ import annotations

import pytest

from mnist_lit import devices


@pytest.mark.parametrize(
    ("setting", "cuda", "resolved", "cpu"),
    [
        ("auto", True, "cuda", False),
        ("auto", False, "cpu", True),
        ("cpu", True, "cpu", True),
        ("cuda:1", False, "cuda:1", False),
        ("gpu", False, "gpu", False),
    ],
)
def test_auto_is_cuda_exactly_when_the_runtime_has_it_and_other_settings_stay(
    setting, cuda, resolved, cpu
):
    assert devices.resolve(setting, lambda: cuda) == resolved
    assert devices.on_cpu(setting, lambda: cuda) == cpu


def test_an_explicit_setting_never_asks_the_runtime():
    def never() -> bool:
        raise AssertionError("asked")

    assert devices.resolve("cpu", never) == "cpu"
