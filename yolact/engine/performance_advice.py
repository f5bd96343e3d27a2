"""Warnings for settings that this machine runs slower than the default (measured, not assumed).

Low-precision autocast on CPU is usable only where the CPU has the instructions for it;
elsewhere oneDNN converts to float32 and back around every operation. Measured (2 cores):
- bf16: one ResNet-50 550 training step took over 150 s against 5.8 s in fp32 on an AVX2 EPYC,
  and 13.6 s against 4.6 s on an AVX-512 Xeon without AVX-512-BF16. On a Xeon with AVX-512-BF16
  (no AMX) a 256-channel 3x3 conv at 69x69 takes 1.3x its fp32 time forward and backward:
  native, though not faster.
- fp16: on that Xeon, which has AVX-512-FP16, the same conv's forward takes 1.6x its fp32 time
  but its backward under fp16 autocast 36 s against 0.38 s: emulated for training. Only AMX-FP16
  counts as native.
oneDNN's own probe (``torch.ops.mkldnn._is_mkldnn_bf16_supported``) says True on any AVX-512
CPU, emulated or not, so the decision reads the CPU's flags (/proc/cpuinfo) instead, less those
above oneDNN's ``ONEDNN_MAX_CPU_ISA`` cap (:func:`kernel_cpu_flags`: with the cap at AVX2 an AMX
CPU runs bf16 emulated). Where there are no flags to read (not Linux, or not x86), a one-time
micro-benchmark decides: a 3x3 convolution's forward and backward under autocast must not take
more than twice their float32 time (native: 1.3x and less; emulated: 3x and more).

Where the CPU has AMX for bf16, bf16 autocast is also much faster than fp32 (there train.amp "auto"
is bf16, :func:`~yolact.engine.runtime.resolve_amp`): a small.yaml step at 192 px takes 264 ms in
fp32, 167 ms in bf16 and 124 ms in bf16 with channels_last (2 cores).
"""
import functools
import logging
import time
from typing import FrozenSet, Optional

import torch

from yolact.utils.cpu_flags import capped_by_onednn, cpu_flags, onednn_isa_cap

__all__ = ["NATIVE_CPU_FLAGS", "CPU_BF16_TRAINING_FLAG", "cpu_flags", "kernel_cpu_flags", "cpu_has_native",
           "cpu_trains_faster_in_bf16", "cpu_precision_note", "log_performance_advice"]

logger = logging.getLogger("yolact")

# the x86 flags (as /proc/cpuinfo spells them) with which each autocast dtype runs natively
NATIVE_CPU_FLAGS = {"bf16": ("avx512_bf16", "amx_bf16"), "fp16": ("amx_fp16",)}
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# the one with which bf16 autocast also trains faster than fp32 (AMX tiles; see the module docstring)
CPU_BF16_TRAINING_FLAG = "amx_bf16"


def _median_ms(run, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000.0)
    return sorted(times)[len(times) // 2]


@functools.lru_cache(maxsize=None)
def _autocast_not_slower(amp: str) -> bool:
    """One-time micro-benchmark (about a second, several where emulated): forward and backward
    of a 64-channel 3x3 conv on 28x28 under ``amp`` autocast take at most twice their float32 time."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1)
    x = torch.randn(1, 64, 28, 28, requires_grad=True)

    def step(dtype):
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            out = conv(x)
        out.float().sum().backward()

    step(None), step(_AUTOCAST_DTYPES[amp])  # warm-up: kernels are chosen and compiled on first use
    return _median_ms(lambda: step(_AUTOCAST_DTYPES[amp])) <= 2.0 * _median_ms(lambda: step(None))


def kernel_cpu_flags() -> Optional[FrozenSet[str]]:
    """This CPU's flags that oneDNN's kernels may use: :func:`cpu_flags` less those above its
    ``ONEDNN_MAX_CPU_ISA`` cap; None where there are no flags to read."""
    return capped_by_onednn(cpu_flags(), onednn_isa_cap())


def cpu_has_native(amp: str, flags: Optional[FrozenSet[str]] = None) -> bool:
    """Whether this CPU runs ``amp`` ("off", "bf16", "fp16") autocast natively.

    "off" always is. Otherwise: one of ``NATIVE_CPU_FLAGS[amp]`` among ``flags`` (default: this
    CPU's: :func:`kernel_cpu_flags`); without flags to read, the one-time micro-benchmark decides.
    """
    if amp == "off":
        return True
    flags = kernel_cpu_flags() if flags is None else flags
    if flags is None:
        return _autocast_not_slower(amp)
    return any(flag in flags for flag in NATIVE_CPU_FLAGS[amp])


def log_performance_advice(device: torch.device, *, amp: str = "off") -> None:
    """Log a warning when ``amp`` autocast is emulated (much slower) on this CPU; nothing on CUDA."""
    if device.type != "cpu":
        return
    if not cpu_has_native(amp):
        wanted = " or ".join(NATIVE_CPU_FLAGS[amp])
        capability = torch.backends.cpu.get_cpu_capability()
        logger.warning(f"{amp} autocast on this CPU ({capability}, no {wanted}) is emulated and much slower "
                       f"than fp32; set amp to off here")


def cpu_trains_faster_in_bf16(flags: Optional[FrozenSet[str]] = None) -> bool:
    """Whether bf16 autocast trains faster than fp32 on this CPU: ``CPU_BF16_TRAINING_FLAG`` among
    ``flags`` (default this CPU's: :func:`kernel_cpu_flags`; False where there are none to read)."""
    flags = kernel_cpu_flags() if flags is None else flags
    return flags is not None and CPU_BF16_TRAINING_FLAG in flags


def cpu_precision_note(amp_setting: str, amp: str, device: torch.device, *,
                       flags: Optional[FrozenSet[str]] = None) -> Optional[str]:
    """A line for the log about the precision a CPU run trains in, where the machine decided it or
    could do better; None otherwise. ``amp_setting`` is train.amp as configured, ``amp`` resolved.

    On a CPU with AMX for bf16 (:func:`cpu_trains_faster_in_bf16` with ``flags``): "auto" that
    became bf16 says so (the run differs from the same config on another CPU), and an fp32 run says
    that bf16 trains about twice as fast here.
    """
    if device.type != "cpu" or not cpu_trains_faster_in_bf16(flags):
        return None
    if amp == "off":
        return (f"this CPU has {CPU_BF16_TRAINING_FLAG}: train.amp=auto (bf16 autocast here) trains about 2x faster "
                f"than fp32; README \"On a CPU with AMX\"")
    if amp_setting == "auto" and amp == "bf16":
        return (f"train.amp=auto: bf16 autocast on this CPU ({CPU_BF16_TRAINING_FLAG}, about 2x faster than fp32; "
                f"weights, loss and validation stay fp32); train.amp=off trains in fp32")
    return None
