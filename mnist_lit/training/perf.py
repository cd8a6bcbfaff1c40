"""Performance settings, applied when training starts: memory format, cuDNN autotuning, matmul
precision, torch.compile. Each `auto` picks what is fastest on the device Lightning chose.

Try it: python train.py perf.channels_last=false trainer.max_epochs=1
"""

from __future__ import annotations

import ctypes
import logging
import os

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from mnist_lit import devices

log = logging.getLogger(__name__)
AUTO, AUTO_BF16 = "auto", "auto-bf16"
# mallopt() parameter numbers from glibc's malloc.h
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
# glibc's ceiling on 64-bit: blocks below this come from the heap
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
# keep up to this much freed memory at the top of the heap
TRIM_THRESHOLD = 256 * 1024 * 1024
# set to "1" by `import lightning`
NVML_CUDA_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def _choose(setting: bool | str, default: bool) -> bool:
    return default if setting == AUTO else bool(setting)


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks for reuse instead of returning them to the OS.

    Each training step frees and re-allocates activations of tens of MB; by default glibc serves
    those with fresh mmap()s, and the page faults on them can cost as much kernel time as the
    convolutions take (see docs/performance.md). Not glibc (macOS, musl): nothing to do.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1
    ok &= libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return ok


def plain_cuda_check_without_gpu() -> bool:
    """Without a CUDA device, have torch.cuda.is_available() skip NVML; returns whether the setting
    changed.

    Lightning asks torch to count GPUs through NVML, which keeps forked worker processes safe.
    Without NVIDIA's driver, each such check dlopen()s the missing NVML library again and then falls
    back to the CUDA runtime. Adam's step checks at every step, so that wasted dlopen() is paid on
    every training step. The plain check makes the same runtime call without the dlopen, so it is no
    less fork-safe here.
    """
    if os.environ.get(NVML_CUDA_CHECK) != "1" or torch.cuda.is_available():
        return False
    del os.environ[NVML_CUDA_CHECK]
    return True


def native_cpu_bf16() -> bool:
    """Whether this CPU computes in bfloat16 in hardware (AVX512-BF16 or AMX), where bf16 autocast
    pays off."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_precision(precision: str | int | None, accelerator: str) -> str | int | None:
    """`auto`: bf16 mixed precision on a GPU (fp16 where it lacks bf16), full fp32 on CPU.
    `auto-bf16`: the same, but bf16 mixed on a CPU too when it computes bf16 natively.

    On CPU, bf16 autocast makes epochs faster on a CPU with AVX512-BF16 or AMX, but costs the
    default CNN test accuracy (docs/performance.md has the figures), so it is an opt-in there
    (`auto-bf16`, or trainer.precision=bf16-mixed); experiment=speedrun takes it. Without hardware
    bf16 the CPU would emulate it, slower than fp32: `auto-bf16` then stays in fp32.
    """
    if precision not in (AUTO, AUTO_BF16):
        return precision
    if devices.resolve(accelerator, torch.cuda.is_available) in devices.GPUS:
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if precision == AUTO_BF16 and native_cpu_bf16() else "32-true"


class Performance(Callback):
    """Applies the `perf` config to the run's network and to torch's global switches."""

    def __init__(
        self,
        channels_last: bool | str = AUTO,
        cudnn_benchmark: bool | str = AUTO,
        float32_matmul_precision: str = "high",
        compile: bool = False,
        reuse_cpu_memory: bool | str = AUTO,
    ) -> None:
        self.channels_last = channels_last
        self.cudnn_benchmark = cudnn_benchmark
        self.reuse_cpu_memory = reuse_cpu_memory
        self.float32_matmul_precision = float32_matmul_precision
        self.compile = compile

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        cuda = trainer.strategy.root_device.type == "cuda"
        # fixed 28x28 shapes: autotuning pays off after the first batch
        torch.backends.cudnn.benchmark = _choose(self.cudnn_benchmark, cuda)
        # TF32 on Ampere+ GPUs; no effect on CPU
        torch.set_float32_matmul_precision(self.float32_matmul_precision)
        # NHWC convolutions are faster with oneDNN on CPU and with tensor cores on GPU
        if _choose(self.channels_last, True):
            pl_module.to(memory_format=torch.channels_last)
        if _choose(self.reuse_cpu_memory, not cuda):
            keep_freed_memory()
        if not cuda:
            plain_cuda_check_without_gpu()
        if self.compile and stage == "fit":
            # compiles in place: the state_dict keys, and so the checkpoints, stay the same
            pl_module.net.compile()
        log.info(
            "perf: channels_last=%s cudnn.benchmark=%s matmul=%s compile=%s",
            _choose(self.channels_last, True),
            torch.backends.cudnn.benchmark,
            self.float32_matmul_precision,
            self.compile,
        )
