"""Warnings for settings that this machine runs slower than the default (measured, not assumed).

On a CPU without native bf16/fp16 (AVX2 only: no AVX-512-BF16, AVX-512-FP16 or AMX), oneDNN
emulates low-precision convolutions: one ResNet-50 550 training step with bf16 autocast took
over 150 s against 5.8 s in fp32 on a 2-core AVX2 EPYC. channels_last training on such a CPU
measured 6% slower per step: oneDNN's NHWC 3x3 convolution backward is 23-58% slower there
than its blocked NCHW one, more than the 2x its NHWC 1x1 convolutions gain.
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


def log_performance_advice(device: torch.device, *, amp: str = "off", channels_last_training: bool = False) -> None:
    """Log one warning per setting that is known to be slow on this CPU; nothing on CUDA."""
    if device.type != "cpu":
        return
    capability = torch.backends.cpu.get_cpu_capability()
    if not cpu_has_native(amp):
        logger.warning(f"{amp} autocast on this CPU ({capability}, no native {amp} kernels) is emulated and "
                       f"much slower than fp32; set amp to off here")
    if channels_last_training and "AVX512" not in capability:
        logger.warning(f"channels_last training on this CPU ({capability}) is usually slower than the default "
                       f"layout (oneDNN's channels_last 3x3 backward); it pays off on CUDA with autocast")
