"""What a device setting means: `auto` is a CUDA GPU when the runtime in use has one, else the CPU.
Training (Lightning's accelerator), a checkpoint on torch and an exported model on onnxruntime all
read `auto` here.

Try it: python predict.py image=path/to/pictures/ device=auto
"""

from __future__ import annotations

from collections.abc import Callable

AUTO = "auto"
CPU, CUDA = "cpu", "cuda"
# the names of a CUDA GPU, as Lightning's accelerator and torch's device take them
GPUS = ("gpu", CUDA)


def resolve(setting: str, cuda_available: Callable[[], bool]) -> str:
    """`setting` with `auto` made concrete ("cuda" when `cuda_available()`, else "cpu"); any other
    unchanged."""
    if setting != AUTO:
        return setting
    return CUDA if cuda_available() else CPU


def on_cpu(setting: str, cuda_available: Callable[[], bool]) -> bool:
    """Whether `setting` runs on the CPU, given whether the runtime has a CUDA GPU."""
    return resolve(setting, cuda_available) == CPU
