"""Run directories: claim one without overwriting another run, resume into it, save checkpoints
atomically.

Try it: python train.py hydra.run.dir=/tmp/run trainer.fast_dev_run=true
        (twice: the second is refused)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.experimental.callback import Callback as HydraCallback
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, open_dict, read_write

from mnist_lit import MnistLitError
from mnist_lit.checkpoints import RESUMABLE, newest
from mnist_lit.cli import fail
from mnist_lit.files import atomic_write

# created exclusively, so two runs can never share a directory
RUN_MARKER = ".mnist_lit_run"


def _resumes_into(run_dir: Path, ckpt_path: str | None) -> bool:
    if not ckpt_path:
        return False
    return Path(ckpt_path).expanduser().resolve().is_relative_to(run_dir.resolve())


def claim_dir(run_dir: str | os.PathLike, ckpt_path: str | None = None) -> None:
    """Mark `run_dir` as this run's, refusing one that already holds another run (resuming into it
    is allowed)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(run_dir / RUN_MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        if _resumes_into(run_dir, ckpt_path):
            return
        raise MnistLitError(
            f"{run_dir} already holds a run; choose another hydra.run.dir (or hydra.sweep.dir), "
            f"or resume it with ckpt_path={run_dir}/checkpoints/last.ckpt hydra.run.dir={run_dir}"
        ) from None
    os.close(fd)


class RunDirGuard(HydraCallback):
    """Hydra callback: claims the run or sweep directory before Hydra writes anything into it, and
    points `ckpt_path=last` at the newest run's checkpoint, resuming into that run's directory."""

    def __init__(self, runs_dir: str) -> None:
        self.runs_dir = runs_dir

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.get("ckpt_path") == "last":
            try:
                ckpt = newest(self.runs_dir, RESUMABLE)
            except MnistLitError as err:
                fail(f"ckpt_path=last: {err}")
            with read_write(config), open_dict(config):
                config.ckpt_path = str(ckpt)
                # same run dir, so the same TensorBoard run
                config.hydra.run.dir = str(ckpt.parent.parent)
        if int(os.environ.get("LOCAL_RANK", 0)) > 0:
            # a DDP worker that Lightning started: it shares the run directory of rank 0
            return
        self._claim(config.hydra.run.dir, config.get("ckpt_path"))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._claim(config.hydra.sweep.dir, None)

    @staticmethod
    def _claim(run_dir: str, ckpt_path: str | None) -> None:
        try:
            claim_dir(run_dir, ckpt_path)
        except MnistLitError as err:
            fail(err)


class InterruptCheckpoint(Callback):
    """Saves `<dirpath>/<filename>.ckpt` when training stops on an exception: Ctrl-C, SIGTERM (a
    kill, a SLURM pre-emption) or a crash. Lightning's OnExceptionCheckpoint does the same, but
    merely having it turns every `fit(ckpt_path=None)` into a resume from "last": a fresh run would
    go looking for a checkpoint to continue. With this one, a run resumes only from the ckpt_path it
    is given."""

    def __init__(self, dirpath: str | os.PathLike, filename: str = "interrupted") -> None:
        self.path = Path(dirpath) / f"{filename}.ckpt"

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        # all of it: optimizer and loops too, to resume
        trainer.save_checkpoint(self.path, weights_only=False)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, through `files.atomic_write`. (Lightning's own atomic save
    stages the file in the system temp dir, which may be another filesystem, where the final move is
    a copy.)"""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        """Save `checkpoint` to `path` atomically."""
        atomic_write(path, lambda f: torch.save(checkpoint, f))


def summary(metrics: dict[str, Any], run_dir: str | os.PathLike, more: Sequence[str] = ()) -> str:
    """The few lines a user wants at the end of a run."""
    lines = [f"Run directory:   {run_dir}"]
    if "test/acc" in metrics:
        lines.append(
            f"Test accuracy:   {100 * metrics['test/acc']:.2f}%  (test loss "
            f"{metrics['test/loss']:.4f})"
        )
    lines.append(f"Best checkpoint: {metrics.get('best_ckpt') or '(none saved)'}")
    tb_dir = Path(run_dir) / "tensorboard"
    if tb_dir.is_dir():
        lines.append(f"TensorBoard:     tensorboard --logdir {tb_dir}")
    return "\n".join([*lines, *more])
