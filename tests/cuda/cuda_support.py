"""Shared pieces of the CUDA checks: the marks, exact fp32, copies to the GPU, error measures."""
import contextlib
import warnings
from typing import Callable, Dict, List

import pytest
import torch

__all__ = ["requires_cuda", "ieee_fp32", "to_cuda_leaves", "targets_to", "assert_close_to_scale",
           "sync_warnings"]

requires_cuda = [pytest.mark.cuda,
                 pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@contextlib.contextmanager
def ieee_fp32():
    """Full fp32 matmuls and convolutions on CUDA (TF32 off; cuDNN convs default to TF32)."""
    saved = (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision)
    torch.backends.cuda.matmul.fp32_precision = "ieee"
    torch.backends.cudnn.conv.fp32_precision = "ieee"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = saved


def to_cuda_leaves(outputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The same values on the GPU, as new leaves that require grad where the originals do."""
    return {name: value.detach().cuda().requires_grad_(value.requires_grad) for name, value in outputs.items()}


def targets_to(targets: List[Dict[str, torch.Tensor]], device) -> List[Dict[str, torch.Tensor]]:
    return [{key: value.to(device) for key, value in target.items()} for target in targets]


def assert_close_to_scale(name: str, ours: torch.Tensor, expected: torch.Tensor, tolerance: float) -> None:
    """max |ours - expected| <= tolerance * max |expected| (a relative error that ignores sign flips
    of values near zero)."""
    ours = ours.detach().cpu()
    assert ours.shape == expected.shape, (name, ours.shape, expected.shape)
    scale = expected.abs().max().item()
    error = (ours - expected).abs().max().item()
    assert error <= tolerance * scale + 1e-12, f"{name}: max error {error:.3g} at magnitude {scale:.3g}"


def sync_warnings(step: Callable[[], None]) -> List[str]:
    """The synchronising CUDA operations that ``step`` runs, one message each
    (``torch.cuda.set_sync_debug_mode("warn")``; the queue is drained first)."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return [f"{w.filename}:{w.lineno}: {w.message}" for w in caught if "synchroniz" in str(w.message)]
