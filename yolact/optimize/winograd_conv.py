"""A 3x3 convolution that runs as Winograd F(6x6, 3x3) (NNPACK) on CPU where that is faster
(where, by CPU: ``inference_optimization.WINOGRAD_FASTER``).

oneDNN, PyTorch's CPU convolution library, computes a 3x3 convolution directly on AVX2 CPUs
(it has no Winograd kernels for AVX2). YOLACT spends most of its inference FLOPs in 256-channel
3x3 convolutions on P3 and on the 138x138 protonet map, where NNPACK's Winograd transform does
about 2x less arithmetic: measured on a 2-core AVX2 CPU, 256->256 at 69x69 takes 17 ms instead
of 31 ms and at 138x138 50 ms instead of 145 ms. On small maps (P4-P7) and narrow convolutions
(the backbone's 64 and 128 channels) the transforms cost more than they save, and the NCHW
output slows the channels_last 1x1 convolution that follows, so those stay on the direct path.

Winograd reorders the arithmetic, so outputs differ from the direct convolution by rounding
(about 1e-6 of the output's magnitude), as cuDNN's Winograd algorithms do on GPUs.
"""
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["WinogradConv2d", "winograd_available", "is_winograd_candidate"]

# measured in the whole R50 model on a 2-core AVX2 CPU (550, batch 1): Winograd from 48x48
# maps (P3 is 69x69) and 256 input channels gives 593 ms; from 128 input channels 607 ms; from
# 64, 631 ms; from 32x32 maps (P4 too) about 30 ms more.
MIN_SPATIAL_SIZE = 48
MIN_IN_CHANNELS = 256
MIN_OUT_CHANNELS = 64


def winograd_available() -> bool:
    """True when this PyTorch build has NNPACK and it initialises on this CPU.

    ``torch._nnpack_available`` also initialises NNPACK, which its convolution needs first.
    """
    return bool(torch._nnpack_available())


def is_winograd_candidate(conv: nn.Module) -> bool:
    """A plain 3x3, stride 1, undilated, ungrouped Conv2d with numeric (not "same") padding."""
    return (type(conv) is nn.Conv2d and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and isinstance(conv.padding, tuple)
            and conv.padding_mode == "zeros")


class WinogradConv2d(nn.Module):
    """Inference-only drop-in for a 3x3 stride-1 ``nn.Conv2d`` (same ``weight``/``bias`` names).

    forward(x [N, C_in, H, W]) -> [N, C_out, H, W]. The Winograd path is taken for float32 CPU
    inputs without autograd, with H and W >= ``min_spatial_size``, C_in >= ``min_in_channels``
    and C_out >= ``min_out_channels``;
    everything else (CUDA, other dtypes, gradients, small maps) is the ordinary convolution.
    The Winograd output is NCHW-contiguous whatever the input's memory format.

    Args:
        conv: the convolution to replace (``is_winograd_candidate(conv)`` must hold); its
            parameters are shared, not copied.
    """

    def __init__(self, conv: nn.Conv2d, *, min_spatial_size: int = MIN_SPATIAL_SIZE,
                 min_in_channels: int = MIN_IN_CHANNELS, min_out_channels: int = MIN_OUT_CHANNELS):
        super().__init__()
        if not is_winograd_candidate(conv):
            raise ValueError(f"not a 3x3 stride-1 dense convolution: {conv}")
        winograd_available()  # initialises NNPACK, without which its convolution fails
        self.weight = conv.weight
        self.bias = conv.bias
        self.padding = conv.padding
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.min_spatial_size = min_spatial_size
        self.min_in_channels = min_in_channels
        self.min_out_channels = min_out_channels

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size=(3, 3), padding={self.padding}, "
                f"winograd from {self.min_spatial_size}x{self.min_spatial_size}")

    def uses_winograd(self, x: torch.Tensor) -> bool:
        """Whether forward(x) takes the Winograd path."""
        return (x.device.type == "cpu" and x.dtype == torch.float32 and self.weight.dtype == torch.float32
                and x.dim() == 4 and min(x.shape[-2:]) >= self.min_spatial_size
                and self.in_channels >= self.min_in_channels and self.out_channels >= self.min_out_channels
                and not (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.uses_winograd(x):
            return F.conv2d(x, self.weight, self.bias, padding=self.padding)
        bias = self.bias if self.bias is not None else x.new_zeros(self.out_channels)
        return torch._nnpack_spatial_convolution(x.contiguous(), self.weight.contiguous(), bias, list(self.padding))
