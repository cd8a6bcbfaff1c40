"""Classify your own digit pictures.  python predict.py image=my_digits/ [ckpt=...|model.onnx]
[format=jsonl]"""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig

from mnist_lit import cli
from mnist_lit.checkpoints import given_or_newest
from mnist_lit.inference.predictor import Predictor
from mnist_lit.inference.sources import find_images, load_pictures
from mnist_lit.inference.table import format_table


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
@cli.command
def main(cfg: DictConfig) -> None:
    """Answer every picture that cfg.image names; exit status 1 if any picture failed."""
    ckpt = given_or_newest(cfg.ckpt, cfg.paths.runs)
    found = find_images(cfg.image)
    if found.skipped_line():
        print(found.skipped_line(), file=sys.stderr)
    workers = (os.cpu_count() or 1) if cfg.workers == "auto" else int(cfg.workers)
    # the pictures first: their worker processes are forked before the model's runtime starts any
    # threads
    predictions = found.failed + load_pictures(found.paths, workers, read=cfg.read)
    predictor = Predictor(ckpt, device=cfg.device)
    predictor.fill_answers(
        predictions, predictor.thresholds(cfg.not_digit, cfg.unsure), batch_size=cfg.batch_size
    )

    print(
        "\n".join(p.to_json() for p in predictions)
        if cfg.format == "jsonl"
        else format_table(predictions, cfg.topk)
    )
    errors = [p for p in predictions if p.error]
    for p in errors:
        print(f"error: {p.image}: {p.error}", file=sys.stderr)
    if cfg.annotate:
        from mnist_lit.inference.annotate import annotate

        written = [annotate(p, cfg.annotate) for p in predictions if not p.error]
        print(f"wrote {len(written)} annotated pictures to {cfg.annotate}", file=sys.stderr)
    raise SystemExit(1 if errors else 0)


if __name__ == "__main__":
    cli.run(main)
