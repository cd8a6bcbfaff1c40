"""The drawing pad and the HTTP API.  python serve.py [ckpt=...] [host=127.0.0.1] [port=8000],
then open the URL"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from mnist_lit import cli
from mnist_lit.checkpoints import given_or_newest
from mnist_lit.serving.server import check_exposure, check_port_free, serve


@hydra.main(version_base="1.3", config_path="conf", config_name="serve")
@cli.command
def main(cfg: DictConfig) -> None:
    """Serve the checkpoint until Ctrl-C or SIGTERM."""
    check_exposure(cfg)
    check_port_free(cfg.host, cfg.port)
    ckpt = given_or_newest(cfg.ckpt, cfg.paths.runs)
    url = f"http://{'127.0.0.1' if cfg.host == '0.0.0.0' else cfg.host}:{cfg.port}"
    key = "   key: X-API-Key" if cfg.api_key else ""
    print(
        f"serving {ckpt}\ndrawing pad: {url}/   API: POST {url}/predict{key}   Ctrl-C stops",
        file=sys.stderr,
    )
    serve(cfg, ckpt)


if __name__ == "__main__":
    cli.run(main)
