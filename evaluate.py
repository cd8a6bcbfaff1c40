"""Test a checkpoint on the official 10k test set.  python evaluate.py ckpt=PATH [out=DIR]"""

from __future__ import annotations

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from mnist_lit import cli
from mnist_lit.checkpoints import given_or_newest
from mnist_lit.training.evaluation import describe, evaluate_checkpoint


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
@cli.command
def main(cfg: DictConfig) -> None:
    """Print test loss, accuracy, per-class accuracy and the confusion matrix; write the report
    files to out."""
    ckpt = given_or_newest(cfg.ckpt, cfg.paths.runs)
    # the checkpoint says which normalization it needs; the rest of `data` comes from the config
    make_datamodule = instantiate(cfg.data, _partial_=True)
    result = evaluate_checkpoint(ckpt, make_datamodule, cfg.out, cfg.accelerator, cfg.precision)
    print(describe(result))
    if cfg.out:
        print(f"\nreport files in {cfg.out}")


if __name__ == "__main__":
    cli.run(main)
