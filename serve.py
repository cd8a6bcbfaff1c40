"""The drawing pad and the HTTP API.  python serve.py [ckpt=...] [host=127.0.0.1] [port=8000], then open the URL"""

from __future__ import annotations

import gc

gc.disable()  # until the imports are done: see mnist_lit.cli.after_imports

import sys

import hydra
from omegaconf import DictConfig

from mnist_lit import MnistLitError, checkpoints
from mnist_lit.cli import after_imports, fail, run
from mnist_lit.serving import build_server, check_port, stop_on_sigterm

after_imports()


def serve(cfg: DictConfig) -> None:
    """Serve the checkpoint until Ctrl-C or SIGTERM."""
    check_port(str(cfg.host), int(cfg.port))
    ckpt = str(cfg.ckpt or checkpoints.newest(cfg.output_root))
    server = build_server(cfg, ckpt)
    url = f"http://{'127.0.0.1' if cfg.host == '0.0.0.0' else cfg.host}:{cfg.port}"
    print(f"serving {ckpt}\ndrawing pad: {url}/   API: POST {url}/predict   Ctrl-C stops", file=sys.stderr)
    stop_on_sigterm()
    server.run(host=str(cfg.host), port=int(cfg.port), log_level=cfg.log_level, generate_client_file=False)


@hydra.main(version_base="1.3", config_path="conf", config_name="serve")
def main(cfg: DictConfig) -> None:
    """CLI entry: bad settings become one line on stderr and a non-zero exit."""
    try:
        serve(cfg)
    except MnistLitError as err:
        fail(err)


if __name__ == "__main__":
    run(main)
