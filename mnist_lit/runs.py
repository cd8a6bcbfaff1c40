"""Run directories: claim one without overwriting another run, check the resume checkpoint, write metrics.json.

Try it: python train.py hydra.run.dir=/tmp/run trainer.fast_dev_run=true   (twice: the second is refused)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig

from mnist_lit import MnistLitError

HPARAM_METRICS = ("test/acc", "test/loss", "val/acc_best")
RUN_MARKER = ".mnist_lit_run"  # created exclusively, so two runs can never share a directory


def resolve_ckpt_path(ckpt_path: str | None) -> str | None:
    """The checkpoint to resume from, checked to exist."""
    if ckpt_path in (None, ""):
        return None
    path = Path(str(ckpt_path)).expanduser()
    if not path.is_file():
        raise MnistLitError(f"ckpt_path={ckpt_path} does not exist; give a .ckpt file written by train.py")
    return str(path)


def _resumes_into(run_dir: Path, ckpt_path: str | None) -> bool:
    if not ckpt_path:
        return False
    return Path(ckpt_path).expanduser().resolve().is_relative_to(run_dir.resolve())


def claim_dir(run_dir: str | os.PathLike, ckpt_path: str | None = None) -> None:
    """Mark `run_dir` as this run's, refusing one that already holds another run (resuming into it is allowed)."""
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


class RunDirGuard(Callback):
    """Hydra callback: claims the run or sweep directory before Hydra writes anything into it."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._claim(config.hydra.run.dir, config.get("ckpt_path"))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._claim(config.hydra.sweep.dir, None)

    @staticmethod
    def _claim(run_dir: str, ckpt_path: str | None) -> None:
        try:
            claim_dir(run_dir, ckpt_path)
        except MnistLitError as err:
            raise SystemExit(f"error: {err}") from None


def write_json(path: str | os.PathLike, data: dict[str, Any]) -> None:
    """Write `data` as JSON atomically: a reader never sees a half-written file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def log_hparams(logger: Logger, params: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Log the run's resolved config; TensorBoard's hparams tab also gets the final metrics beside it."""
    if isinstance(logger, TensorBoardLogger):
        final = {f"hp/{k}": metrics[k] for k in HPARAM_METRICS if k in metrics}
        logger.log_hyperparams(params, final)
    else:
        logger.log_hyperparams(params)


def summary(metrics: dict[str, Any], run_dir: str | os.PathLike) -> str:
    """The few lines a user wants at the end of a run."""
    lines = [f"Run directory:   {run_dir}"]
    if "test/acc" in metrics:
        lines.append(f"Test accuracy:   {100 * metrics['test/acc']:.2f}%  (test loss {metrics['test/loss']:.4f})")
    lines.append(f"Best checkpoint: {metrics.get('best_ckpt') or '(none saved)'}")
    tb_dir = Path(run_dir) / "tensorboard"
    if tb_dir.is_dir():
        lines.append(f"TensorBoard:     tensorboard --logdir {tb_dir}")
    return "\n".join(lines)
