"""Export a checkpoint to ONNX for torch-free prediction.  python export.py [ckpt=...] [out=model.onnx]"""

from __future__ import annotations

import gc

gc.disable()  # until the imports are done: see mnist_lit.cli.after_imports

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from mnist_lit import MnistLitError, checkpoints, idx
from mnist_lit.cli import after_imports, fail, run
from mnist_lit.onnx_export import export

after_imports()


def main_export(cfg: DictConfig) -> None:
    """Export, verify on the MNIST test set, and say what was written."""
    out = Path(str(cfg.out)).expanduser()
    if out.suffix.lower() != checkpoints.ONNX_SUFFIX:
        raise MnistLitError(f"out={cfg.out} must end in .onnx: predict.py and serve.py read a model by its suffix")
    if out.exists() and not cfg.force:
        raise MnistLitError(f"out={cfg.out} already exists; choose another out= or pass force=true to replace it")
    ckpt = checkpoints.existing(cfg.ckpt) if cfg.ckpt else checkpoints.newest(cfg.output_root)
    if not cfg.ckpt:
        print(f"using checkpoint {ckpt}", file=sys.stderr)
    idx.ensure(cfg.data_root, cfg.download, setting="download")  # the test set that the export is checked on
    images, _ = idx.load_split(cfg.data_root, "test")
    parity = export(ckpt, out, images.numpy(), float(cfg.unsure))
    print(parity.line())
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) from {ckpt}")
    print(f"use it with: python predict.py image=... ckpt={out}")


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    """CLI entry: bad input becomes one line on stderr and a non-zero exit."""
    try:
        main_export(cfg)
    except MnistLitError as err:
        fail(err)


if __name__ == "__main__":
    run(main)
