"""MNIST's raw files: decoding and checking the IDX format, and downloading them when they are
missing.

Try it: pytest tests/data/test_data.py
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import os
import socket
from pathlib import Path

import torch

from mnist_lit import IMAGE_SIZE, NUM_CLASSES, MnistLitError

# torchvision's layout: <root>/MNIST/raw/<file>; a .gz sibling is accepted too.
RAW_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# the IDX dtype code of unsigned bytes
IDX_UBYTE = 0x08
# per network call: offline, the run stops within seconds
DOWNLOAD_TIMEOUT_S = 10


def raw_dir(root: str | os.PathLike) -> Path:
    """Folder where torchvision keeps MNIST's raw IDX files under `root`."""
    return Path(root).expanduser() / "MNIST" / "raw"


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def missing_files(root: str | os.PathLike) -> list[str]:
    """Names of the four IDX files that are not under `root` (plain or .gz)."""
    folder = raw_dir(root)
    return [name for pair in RAW_FILES.values() for name in pair if _find(folder, name) is None]


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Decode one IDX file of unsigned bytes into a uint8 tensor, checking its header against its
    size."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise MnistLitError(f"cannot read IDX file {path}: {err}") from err
    # header: 2 zero bytes, a dtype byte, ndim, then ndim big-endian int32 sizes
    if (
        len(data) < 4
        or data[0] != 0
        or data[1] != 0
        or data[2] != IDX_UBYTE
        or not 1 <= data[3] <= 3
    ):
        raise MnistLitError(
            f"{path} is not an IDX file of unsigned bytes (bad header); re-download it"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MnistLitError(f"{path} is truncated inside its header; re-download it")
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + math.prod(shape)
    if len(data) != expected:
        raise MnistLitError(
            f"{path} holds {len(data) - header} data bytes but its header {tuple(shape)} says "
            f"{expected - header}: the file is truncated or corrupt; re-download it"
        )
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=header).view(*shape)


def load_split(root: str | os.PathLike, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of the official `train` or `test` split."""
    folder = raw_dir(root)
    paths = []
    for name in RAW_FILES[split]:
        path = _find(folder, name)
        if path is None:
            raise MnistLitError(missing_message(root))
        paths.append(path)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise MnistLitError(
            f"{paths[0]} holds images of shape {tuple(images.shape[1:])}, expected 28x28"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise MnistLitError(
            f"{paths[1]} holds {len(labels)} labels for {len(images)} images in {paths[0]}"
        )
    if len(labels) and int(labels.max()) >= NUM_CLASSES:
        raise MnistLitError(f"{paths[1]} holds label {int(labels.max())}; MNIST labels are 0-9")
    return images, labels.long()


def missing_message(root: str | os.PathLike, reason: str = "") -> str:
    expected = ", ".join(name for pair in RAW_FILES.values() for name in pair)
    why = f" and downloading failed ({reason})" if reason else ""
    return (
        f"MNIST not found in {raw_dir(root).resolve()}{why}. Expected the four IDX files "
        f"{expected} there "
        "(plain or .gz). Point data.root=DIR or DATA_DIR=DIR at the folder that holds MNIST/raw/."
    )


def ensure(root: str | os.PathLike, allow_download: bool, setting: str = "data.download") -> None:
    """Make sure the four IDX files are under `root`: download them when missing, unless `setting`
    (the user's name for allow_download) is false."""
    if not missing_files(root):
        return
    if not allow_download:
        raise MnistLitError(missing_message(root, f"{setting}=false"))
    download(root)


def download(root: str | os.PathLike) -> None:
    """Fetch MNIST into `root` with torchvision, failing fast with one clear error when offline."""
    # only needed on this path
    from torchvision.datasets import MNIST

    previous = socket.getdefaulttimeout()
    # torchvision's urllib calls have no timeout of their own
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    # torchvision prints a line per mirror tried; the user gets one error instead
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter):
            MNIST(str(root), train=True, download=True)
    except Exception as err:
        # any network or mirror failure means the same thing to the user
        raise MnistLitError(missing_message(root, str(err).strip().splitlines()[-1])) from err
    finally:
        socket.setdefaulttimeout(previous)
