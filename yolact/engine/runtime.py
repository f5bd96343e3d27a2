"""What both wings need from the machine: the device, the seeds and the one autocast helper."""
import contextlib
import random

import numpy as np
import torch

from yolact.errors import YolactError

__all__ = ["AMP_MODES", "select_device", "seed_everything", "autocast"]

AMP_MODES = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def select_device(name: str, local_rank: int = 0) -> torch.device:
    """"auto" -> this rank's GPU when CUDA is available, else the CPU."""
    if name == "auto":
        name = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise YolactError(f"train.device={name}: CUDA is not available on this machine")
    return torch.device(name)


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
