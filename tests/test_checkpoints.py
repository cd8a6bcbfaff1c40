"""Finding, reading and writing checkpoints; a fresh run never resumes.  Run: pytest
tests/test_checkpoints.py"""

from __future__ import annotations

import os
import shutil

import pytest
import torch

from mnist_lit import MnistLitError, checkpoints
from mnist_lit.models import rebuild
from mnist_lit.training.module import MNISTLitModule
from mnist_lit.training.run import train


def touch_ckpt(path, mtime: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.utime(path, (mtime, mtime))
    return path


def test_newest_takes_the_latest_written_among_runs_and_sweeps(tmp_path):
    touch_ckpt(tmp_path / "runs/a/checkpoints/best.ckpt", 100)
    newest = touch_ckpt(tmp_path / "multiruns/s/3/checkpoints/best.ckpt", 300)
    # not a best.ckpt
    touch_ckpt(tmp_path / "runs/b/checkpoints/last.ckpt", 400)
    assert checkpoints.newest(tmp_path) == newest
    resumable = touch_ckpt(tmp_path / "runs/c/checkpoints/interrupted.ckpt", 500)
    assert checkpoints.newest(tmp_path, checkpoints.RESUMABLE) == resumable


def test_newest_in_a_folder_with_glob_characters(tmp_path):
    root = tmp_path / "exp[1]"
    found = touch_ckpt(root / "runs/a/checkpoints/best.ckpt", 100)
    assert checkpoints.newest(root) == found


def test_existing_names_the_setting_it_came_from(tmp_path):
    with pytest.raises(MnistLitError, match=r"ckpt_path=.*nope.ckpt does not exist"):
        checkpoints.existing(tmp_path / "nope.ckpt", "ckpt_path")


def test_read_and_rebuild_give_the_trained_network(synthetic_ckpt):
    ckpt = checkpoints.read(synthetic_ckpt)
    assert checkpoints.normalization(ckpt) == (0.1307, 0.3081)
    net = rebuild(ckpt, synthetic_ckpt)
    # dropout off
    assert not net.training
    module = MNISTLitModule.load_from_checkpoint(synthetic_ckpt, map_location="cpu").eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(net(x), module(x))


def test_checkpoint_without_normalization_is_not_ours(tmp_path, synthetic_ckpt):
    ckpt = torch.load(synthetic_ckpt, weights_only=True)
    del ckpt["hyper_parameters"]["mean"]
    torch.save(ckpt, tmp_path / "x.ckpt")
    with pytest.raises(MnistLitError, match="not an mnist-lit checkpoint"):
        checkpoints.read(tmp_path / "x.ckpt")


def test_a_fresh_run_never_resumes_a_checkpoint_it_finds(make_cfg, tmp_path):
    first = train(make_cfg("trainer.max_epochs=2", run_dir=tmp_path / "old"))
    assert first["epochs"] == 2
    fresh_dir = tmp_path / "fresh"
    # last.ckpt lies there
    shutil.copytree(tmp_path / "old" / "checkpoints", fresh_dir / "checkpoints")
    shutil.copy(
        fresh_dir / "checkpoints" / "last.ckpt", fresh_dir / "checkpoints" / "interrupted.ckpt"
    )
    fresh = train(make_cfg("trainer.max_epochs=1", run_dir=fresh_dir))
    # trained one epoch from scratch; a resume would have stopped at epoch 2
    assert fresh["epochs"] == 1


def test_given_or_newest_takes_the_given_file_or_names_the_newest_on_stderr(tmp_path, capsys):
    old, new = (tmp_path / "runs" / name / "checkpoints" / "best.ckpt" for name in ("a", "b"))
    for path in (old, new):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
    os.utime(old, (1, 1))
    assert checkpoints.given_or_newest(str(old), tmp_path) == old
    assert capsys.readouterr().err == ""
    assert checkpoints.given_or_newest(None, tmp_path) == new
    assert capsys.readouterr().err == f"using checkpoint {new}\n"
    with pytest.raises(MnistLitError, match="ckpt=.*nope.ckpt does not exist"):
        checkpoints.given_or_newest(str(tmp_path / "nope.ckpt"), tmp_path)
    with pytest.raises(MnistLitError, match="no checkpoint"):
        checkpoints.given_or_newest(None, tmp_path / "empty")
