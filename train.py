"""Train and test a CNN on MNIST.  python train.py [optimizer=sgd] [trainer.max_epochs=20] [-m
...]"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from mnist_lit.cli import run
from mnist_lit.training.run import train_command


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Fit, test the best checkpoint and write metrics.json; returns the metric that a sweeper
    optimizes."""
    return train_command(cfg)


if __name__ == "__main__":
    run(main)
