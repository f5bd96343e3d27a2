"""What both wings need from the machine: the device, the seeds and the one autocast helper."""
import contextlib
import random
from typing import Union

import numpy as np
import torch
from torch import nn

from yolact.engine import performance_advice
from yolact.optimize.nchw_backward_conv import to_channels_last_for_training
from yolact.utils.cpu_allocator import keep_freed_cpu_memory
from yolact.utils.distributed import resolve_device

__all__ = ["AMP_MODES", "select_device", "resolve_amp", "resolve_channels_last", "cpu_backward_in_nchw",
           "set_training_memory_format", "checks_gradients", "configure_cuda", "configure_cpu", "seed_everything",
           "autocast"]

AMP_MODES = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def select_device(name: str, *, world_size: int = 1, local_rank: int = 0, key: str = "train.device") -> torch.device:
    """This process's device for the configured ``name`` (rules in
    :func:`~yolact.utils.distributed.resolve_device`): under torchrun "auto" and "cuda" are
    ``cuda:LOCAL_RANK`` and "cuda:N" is an error naming ``key``; in one process "cuda" is the
    current GPU and "cuda:N" that GPU."""
    cuda_device_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return resolve_device(name, world_size=world_size, local_rank=local_rank, cuda_device_count=cuda_device_count,
                          key=key)


def resolve_amp(amp: str, device: torch.device) -> str:
    """``amp`` with "auto" made concrete: on a CPU "bf16" where it has AMX for bf16 (about 2x faster
    than fp32: :func:`~yolact.engine.performance_advice.cpu_trains_faster_in_bf16`), else "off"
    (emulated, or native but no faster); on a GPU "bf16" where it runs it natively (Ampere and
    newer), else "fp16" (with a GradScaler)."""
    if amp != "auto":
        return amp
    if device.type != "cuda":
        return "bf16" if performance_advice.cpu_trains_faster_in_bf16() else "off"
    with torch.cuda.device(device):
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"


def resolve_channels_last(channels_last: Union[bool, str], device: torch.device, amp: str) -> bool:
    """``channels_last`` (a bool or "auto") made concrete for a run with ``amp`` (resolved):
    "auto" is on for a CPU, in fp32 and bf16 alike, and off on a GPU. A small.yaml step at 192 px
    in channels_last against contiguous, 2 cores: fp32 1.16x on AVX-512 kernels and 1.07x on AVX2
    ones, bf16 1.34x with AMX (README "Benchmarks")."""
    if channels_last == "auto":
        return device.type == "cpu"
    return bool(channels_last)


def cpu_backward_in_nchw(channels_last: Union[bool, str], device: torch.device, amp: str) -> bool:
    """Whether a channels_last run computes the backward of its k>1 convolutions in NCHW
    (:mod:`yolact.optimize.nchw_backward_conv`): where ``channels_last`` is set to true (not
    "auto") for fp32 on a CPU, as measured for ResNet-50 at 550 px on an AVX2 EPYC. "auto" keeps
    oneDNN's own channels_last backward, faster for small.yaml's model on every CPU measured."""
    return channels_last is True and device.type == "cpu" and amp == "off"


def set_training_memory_format(model: nn.Module, channels_last: Union[bool, str], device: torch.device,
                               amp: str) -> bool:
    """Put ``model`` (already on ``device``) in the memory format a training run with the
    ``channels_last`` setting and ``amp`` (resolved) uses, in place: channels_last where
    :func:`resolve_channels_last` says so, with the NCHW backward of
    :func:`cpu_backward_in_nchw`. Returns whether the run is channels_last (its inputs follow)."""
    use_channels_last = resolve_channels_last(channels_last, device, amp)
    if use_channels_last:
        to_channels_last_for_training(model, device, nchw_backward=cpu_backward_in_nchw(channels_last, device, amp))
    return use_channels_last


def checks_gradients(device: torch.device, amp: str) -> bool:
    """Whether training checks its gradients are finite after each backward (``Trainer.check_gradients``):
    for bf16 (``amp`` resolved) on a CPU, where the extra host sync is free and oneDNN's bf16
    kernels have been caught at wrong gradients (README "On a CPU with AMX")."""
    return device.type == "cpu" and amp == "bf16"


def configure_cuda(device: torch.device) -> None:
    """cuDNN picks the fastest convolution per shape (our inputs are S x S, a fixed size)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def configure_cpu(device: torch.device, *, reuse_memory: bool) -> bool:
    """On a CPU with ``reuse_memory``, freed tensors' memory stays in the process for the next
    step (:func:`~yolact.utils.cpu_allocator.keep_freed_cpu_memory`); whether that was set."""
    return device.type == "cpu" and reuse_memory and keep_freed_cpu_memory()


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's global and torch's generators."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def autocast(device: torch.device, amp: str = "off"):
    """``torch.autocast`` to bf16/fp16 on this device type for ``amp`` "bf16"/"fp16"; a no-op for "off"."""
    dtype = AMP_MODES[amp]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
