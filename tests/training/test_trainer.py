"""Trainer settings that this machine cannot run are one-line errors.  Run: pytest
tests/training/test_trainer.py"""

from __future__ import annotations

import os

import pytest
import torch

from mnist_lit import MnistLitError
from mnist_lit.training.run import train
from tests.conftest import run_cli, synthetic_overrides

NO_GPU_HERE = "needs a GPU, and torch finds none here; use"
NO_GPU = pytest.mark.skipif(
    torch.cuda.is_available(), reason="this machine has a GPU, so the GPU settings are valid"
)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param(("trainer.accelerator=gpu",), f"{NO_GPU_HERE} trainer=cpu", marks=NO_GPU),
        pytest.param(
            ("trainer=ddp", "trainer.accelerator=gpu"),
            f"{NO_GPU_HERE} trainer=ddp_cpu",
            marks=NO_GPU,
        ),
        (
            ("trainer=cpu", f"trainer.devices={(os.cpu_count() or 1) + 1}"),
            "CPU processes, but this machine has",
        ),
        (
            ("trainer.precision=17",),
            "trainer.precision=17 is not a precision Lightning knows; use one of auto",
        ),
    ],
)
def test_settings_the_machine_cannot_run_say_what_to_use_instead(make_cfg, overrides, message):
    # make_cfg trains on CPU: the GPU cases set the accelerator again after it
    with pytest.raises(MnistLitError, match=message):
        train(make_cfg(*overrides))


@pytest.mark.cli
def test_a_bad_precision_is_one_line_on_the_command_line(tmp_path, synthetic_root):
    proc = run_cli(
        "train.py", *synthetic_overrides(synthetic_root), "trainer.precision=17", cwd=tmp_path
    )
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("error: trainer.precision=17 is not a precision")
    )
    assert "Traceback" not in proc.stderr
    assert "Error executing job" not in proc.stderr
