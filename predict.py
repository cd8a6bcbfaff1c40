"""Classify your own digit pictures.  python predict.py image=my_digits/ [ckpt=...|model.onnx] [format=jsonl]"""

from __future__ import annotations

import gc

gc.disable()  # until the imports are done: see mnist_lit.cli.after_imports

import os
import sys

import hydra
from omegaconf import DictConfig

from mnist_lit import MnistLitError, checkpoints
from mnist_lit.answer import check_settings
from mnist_lit.cli import after_imports, fail, run
from mnist_lit.predictor import Predictor, find_images, format_table, load_pictures

after_imports()

FORMATS = ("table", "jsonl")


def check(cfg: DictConfig) -> None:
    """Refuse settings that cannot work, before the checkpoint is loaded."""
    if not cfg.image:
        raise MnistLitError("give the pictures: image=FILE, image=FOLDER or image='GLOB'")
    if cfg.format not in FORMATS:
        raise MnistLitError(f"format={cfg.format} is not one of {list(FORMATS)}")
    if not 1 <= int(cfg.topk) <= 10 or int(cfg.batch_size) < 1:
        raise MnistLitError("topk must be 1-10 and batch_size at least 1")
    check_settings(cfg.not_digit, cfg.unsure, cfg.read)


def predict(cfg: DictConfig) -> int:
    """Predict every picture named by cfg.image; returns the exit status (1 if any picture failed)."""
    check(cfg)
    ckpt = checkpoints.existing(cfg.ckpt) if cfg.ckpt else checkpoints.newest(cfg.output_root)
    if not cfg.ckpt:
        print(f"using checkpoint {ckpt}", file=sys.stderr)

    found = find_images(str(cfg.image))
    if found.skipped_line():
        print(found.skipped_line(), file=sys.stderr)
    workers = (os.cpu_count() or 1) if cfg.workers == "auto" else int(cfg.workers)
    # the pictures first: their worker processes are forked before the model's runtime starts any threads
    predictions = found.failed + load_pictures(found.paths, workers, read=str(cfg.read))
    predictor = Predictor(ckpt, device=str(cfg.device))
    thresholds = predictor.thresholds(cfg.not_digit, float(cfg.unsure))
    predictor.classify(predictions, thresholds, batch_size=int(cfg.batch_size))

    if cfg.format == "jsonl":
        print("\n".join(p.to_json() for p in predictions))
    else:
        print(format_table(predictions, int(cfg.topk)))
    errors = [p for p in predictions if p.error]
    for p in errors:
        print(f"error: {p.image}: {p.error}", file=sys.stderr)
    if cfg.annotate:
        from mnist_lit.annotate import annotate

        written = [annotate(p, cfg.annotate) for p in predictions if not p.error]
        print(f"wrote {len(written)} annotated pictures to {cfg.annotate}", file=sys.stderr)
    return 1 if errors else 0


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    """CLI entry: bad input becomes one line on stderr and a non-zero exit."""
    try:
        status = predict(cfg)
    except MnistLitError as err:
        fail(err)
    if status:
        raise SystemExit(status)


if __name__ == "__main__":
    run(main)
