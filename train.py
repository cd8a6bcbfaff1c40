"""Train and test a CNN on MNIST.  python train.py [optimizer=sgd] [trainer.max_epochs=20] [-m ...]"""

from __future__ import annotations

import gc

gc.disable()  # until the imports are done: see mnist_lit.cli.after_imports

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from mnist_lit import MnistLitError
from mnist_lit.cli import after_imports, run
from mnist_lit.perf import resolve_precision
from mnist_lit.runs import AtomicCheckpointIO, log_hparams, resolve_ckpt_path, summary, write_json
from mnist_lit.schema import validate
from mnist_lit.sweep import in_multirun, record_failure, sweeper_stops_on_exceptions

after_imports()

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test the best checkpoint, write metrics.json to the run directory; returns the metrics."""
    validate(cfg)  # before any work: a bad value costs nothing
    run_dir = Path(cfg.run_dir)
    ckpt_path = resolve_ckpt_path(cfg.ckpt_path)
    L.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    model = instantiate(
        cfg.model, optimizer=cfg.optimizer, scheduler=cfg.scheduler, mean=datamodule.mean, std=datamodule.std
    )
    callbacks = [instantiate(cb) for cb in (cfg.get("callbacks") or {}).values() if cb] + [instantiate(cfg.perf)]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    precision = resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=logger, precision=precision, plugins=[AtomicCheckpointIO()]
    )

    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = {k: v.item() for k, v in trainer.callback_metrics.items()}
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    metrics.update(trainer.test(model, datamodule=datamodule, ckpt_path=best or None, verbose=False)[0])
    metrics.update(best_ckpt=best, epochs=trainer.current_epoch, run_dir=str(run_dir))

    if trainer.is_global_zero:  # under DDP every process gets here; one writes
        if logger:
            log_hparams(logger, OmegaConf.to_container(cfg, resolve=True), metrics)
        write_json(run_dir / "metrics.json", metrics)
        log.info("\n%s", summary(metrics, run_dir))
    return metrics


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """CLI entry: user errors become one line on stderr and a non-zero exit."""
    try:
        metrics = train(cfg)
    except SIGTERMException:  # Lightning saved interrupted.ckpt and would exit 0, as if the run had finished
        raise SystemExit(
            f"stopped by SIGTERM: checkpoint saved in {cfg.run_dir}/checkpoints; resume with ckpt_path=last"
        )
    except Exception as err:
        cause = err.__cause__ if isinstance(err, InstantiationException) else err  # raised in a constructor
        if in_multirun():  # one failed job must not end the sweep: record it for the summary
            record_failure(cfg.run_dir, cause)
            if sweeper_stops_on_exceptions():
                return float("nan")
            raise
        if isinstance(cause, MnistLitError):
            raise SystemExit(f"error: {cause}") from None
        raise
    return metrics.get(cfg.optimized_metric)


if __name__ == "__main__":
    run(main)
