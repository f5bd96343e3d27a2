"""Warnings for settings that this machine runs slower than the default (measured, not assumed).

On a CPU without native bf16/fp16 (AVX2 only: no AVX-512-BF16, AVX-512-FP16 or AMX), oneDNN
emulates low-precision convolutions: one ResNet-50 550 training step with bf16 autocast took
over 150 s against 5.8 s in fp32 on a 2-core AVX2 EPYC.
"""
import logging

import torch

__all__ = ["cpu_has_native", "log_performance_advice"]

logger = logging.getLogger("yolact")


def cpu_has_native(amp: str) -> bool:
    """Whether oneDNN reports native kernels on this CPU for "bf16"/"fp16" ("off" is always native)."""
    if amp == "off":
        return True
    probe = {"bf16": "_is_mkldnn_bf16_supported", "fp16": "_is_mkldnn_fp16_supported"}[amp]
    try:
        return bool(getattr(torch.ops.mkldnn, probe)())
    except (AttributeError, RuntimeError):  # an older or newer build without the probe: assume native
        return True


def log_performance_advice(device: torch.device, *, amp: str = "off") -> None:
    """Log a warning when ``amp`` is known to be slow on this CPU; nothing on CUDA."""
    if device.type != "cpu":
        return
    if not cpu_has_native(amp):
        logger.warning(f"{amp} autocast on this CPU ({torch.backends.cpu.get_cpu_capability()}, no native {amp} "
                       f"kernels) is emulated and much slower than fp32; set amp to off here")
