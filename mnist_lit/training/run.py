"""One training run, as train.py starts it: check the config, fit, test the best checkpoint, write
metrics.json; and what a failed run means inside a sweep.

Try it: python train.py trainer.max_epochs=1
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from mnist_lit import MnistLitError
from mnist_lit.checkpoints import existing
from mnist_lit.cli import fail
from mnist_lit.files import write_json
from mnist_lit.schema import validate
from mnist_lit.training.loggers import build_loggers, log_run_end, where_to_look
from mnist_lit.training.runs import AtomicCheckpointIO, summary
from mnist_lit.training.sweep import in_multirun, record_failure, sweeper_stops_on_exceptions
from mnist_lit.training.trainer import build_trainer

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test the best checkpoint, write metrics.json to the run directory; returns the
    metrics."""
    # before any work: a bad value costs nothing
    validate(cfg)
    run_dir = Path(cfg.run_dir)
    # a resume, or a fresh run
    ckpt_path = str(existing(cfg.ckpt_path, "ckpt_path")) if cfg.ckpt_path else None
    datamodule = instantiate(cfg.data)
    # missing data is found (or fetched) before the Trainer says anything
    if rank_zero_only.rank == 0:
        # fit() calls it again, on one process per node, behind a barrier: a no-op then
        datamodule.prepare_data()
    L.seed_everything(cfg.seed, workers=True)
    make_model = instantiate(
        cfg.model,
        optimizer=cfg.optimizer,
        scheduler=cfg.scheduler,
        mean=datamodule.mean,
        std=datamodule.std,
        _partial_=True,
    )
    # the digits' augmentation goes onto the generated negatives too
    model = make_model(augment=datamodule.augment)
    callbacks = [instantiate(cb) for cb in (cfg.get("callbacks") or {}).values() if cb] + [
        instantiate(cfg.perf)
    ]
    loggers = build_loggers(cfg.get("logger"))
    trainer = build_trainer(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )

    # our checkpoints hold no pickled objects: both reads are weights_only
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    metrics = {k: v.item() for k, v in trainer.callback_metrics.items()}
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    # the best checkpoint's weights; without one (fast_dev_run, checkpointing off), the model as
    # trained
    metrics.update(
        trainer.test(
            model, datamodule=datamodule, ckpt_path=best or None, weights_only=True, verbose=False
        )[0]
    )
    metrics.update(best_ckpt=best, epochs=trainer.current_epoch, run_dir=str(run_dir))

    # under DDP every process gets here; one writes
    if trainer.is_global_zero:
        more = where_to_look(loggers)
        log_run_end(
            loggers,
            OmegaConf.to_container(cfg, resolve=True),
            metrics,
            dev_run=bool(trainer.fast_dev_run),
        )
        write_json(run_dir / "metrics.json", metrics)
        log.info("\n%s", summary(metrics, run_dir, more))
    return metrics


def train_command(cfg: DictConfig) -> float | None:
    """train.py's run: the metric a sweeper optimizes. A user's error is one line; in a sweep, a
    failed job is recorded for the summary, and the sweep goes on where its sweeper allows."""
    try:
        metrics = train(cfg)
    except SIGTERMException:
        # interrupted.ckpt is saved, and Lightning would exit 0, as if the run had finished
        fail(
            f"stopped by SIGTERM: checkpoint saved in {cfg.run_dir}/checkpoints; resume with "
            "ckpt_path=last"
        )
    except Exception as err:
        # raised in a constructor
        cause = err.__cause__ if isinstance(err, InstantiationException) else err
        # one failed job must not end the sweep: record it for the summary
        if in_multirun():
            record_failure(cfg.run_dir, cause)
            if sweeper_stops_on_exceptions():
                return float("nan")
            raise
        if isinstance(cause, MnistLitError):
            fail(cause)
        raise
    return metrics.get(cfg.optimized_metric)
