"""Test a checkpoint on the official 10k test set.  python evaluate.py ckpt=PATH [out=DIR]"""

from __future__ import annotations

import gc

gc.disable()  # until the imports are done: see mnist_lit.cli.after_imports

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from mnist_lit import MnistLitError, checkpoints
from mnist_lit.cli import after_imports, fail, run
from mnist_lit.evaluation import describe, evaluate_checkpoint
from mnist_lit.schema import validate

after_imports()


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    """Print test loss, accuracy, per-class accuracy and the confusion matrix; write the report files to out."""
    try:
        validate(cfg)
        ckpt = cfg.ckpt or checkpoints.newest(cfg.output_root)
        print(f"checkpoint {ckpt}")
        # the checkpoint says which normalization it needs; the rest of `data` comes from the config
        make_datamodule = instantiate(cfg.data, _partial_=True)
        result = evaluate_checkpoint(ckpt, make_datamodule, cfg.out, cfg.accelerator, cfg.precision)
    except MnistLitError as err:
        fail(err)
    print(describe(result))
    if cfg.out:
        print(f"\nreport files in {cfg.out}")


if __name__ == "__main__":
    run(main)
