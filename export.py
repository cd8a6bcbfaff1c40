"""Export a checkpoint to ONNX for torch-free prediction.  python export.py [ckpt=...]
[out=model.onnx]"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from mnist_lit import cli
from mnist_lit.checkpoints import given_or_newest
from mnist_lit.data.idx import ensure, load_split
from mnist_lit.inference.export import export


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
@cli.command
def main(cfg: DictConfig) -> None:
    """Export, verify on the MNIST test set, and say what was written."""
    out = Path(cfg.out).expanduser()
    if out.exists() and not cfg.force:
        cli.fail(
            f"out={cfg.out} already exists; choose another out= or pass force=true to replace it"
        )
    ckpt = given_or_newest(cfg.ckpt, cfg.paths.runs)
    # the test set that the export is checked on
    ensure(cfg.paths.data, cfg.download, setting="download")
    images, _ = load_split(cfg.paths.data, "test")
    parity = export(ckpt, out, images.numpy(), cfg.unsure)
    print(parity.line())
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) from {ckpt}")
    print(f"use it with: python predict.py image=... ckpt={out}")


if __name__ == "__main__":
    cli.run(main)
