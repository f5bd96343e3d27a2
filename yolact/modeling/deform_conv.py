"""DCNv2's modulated deformable convolution (the ``DCN`` module of YOLACT++) on torchvision.

The reference imports ``DCN`` from the compiled DCNv2 CUDA extension; here the same module (same
parameters, same names, same offset/mask layout) runs on ``torchvision.ops.deform_conv2d``, on
CPU and CUDA alike. Parameter names match the released YOLACT++ checkpoints:
``weight``, ``bias``, ``conv_offset_mask.weight``, ``conv_offset_mask.bias``.
"""
import math
from typing import Tuple

import torch
from torch import nn
from torchvision.ops import deform_conv2d

__all__ = ["ModulatedDeformConv2d"]


class ModulatedDeformConv2d(nn.Module):
    """A k x k deformable conv whose offsets and modulation masks come from a plain conv of its input.

    ``conv_offset_mask`` (a conv with the same kernel, stride and padding, no dilation, with bias)
    predicts ``3*kh*kw*dg`` channels; they are cut into three equal chunks ``o1, o2, m`` along the
    channels: the offsets are ``cat(o1, o2)`` (channel ``2k`` is dy, ``2k+1`` is dx of tap
    ``k = i*kw + j``, repeated per deformable group) and the mask is ``sigmoid(m)``. Tap (i, j) of
    output (y, x) samples the input bilinearly at ``(y*s - p + i*d + dy, x*s - p + j*d + dx)``
    (zero outside the map), times its mask; the DCN conv has a bias.

    Args:
        in_channels, out_channels: channels.
        kernel_size, stride, padding, dilation: as nn.Conv2d (ints, square).
        deformable_groups: groups of input channels that share offsets and masks.

    The init follows DCNv2: weight uniform in +-1/sqrt(in*k*k), zero bias, and a zero
    ``conv_offset_mask``, so that a fresh layer is ``0.5 * conv + bias`` (the mask is sigmoid(0)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *, stride: int = 1,
                 padding: int = 1, dilation: int = 1, deformable_groups: int = 1):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size: Tuple[int, int] = (kernel_size, kernel_size)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.deformable_groups = deformable_groups
        # registered before conv_offset_mask: the state_dict order of DCNv2's module
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        offset_channels = deformable_groups * 3 * kernel_size * kernel_size
        # DCNv2 does not pass the dilation to the offset/mask conv
        self.conv_offset_mask = nn.Conv2d(in_channels, offset_channels, kernel_size, stride=stride,
                                          padding=padding, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.zeros_(self.bias)
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def offsets_and_mask(self, features: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """features [N, C_in, H, W] -> offset [N, 2*dg*kh*kw, Ho, Wo] (dy, dx interleaved per tap)
        and mask [N, dg*kh*kw, Ho, Wo] in (0, 1)."""
        dy_dx_first, dy_dx_second, mask_logits = torch.chunk(self.conv_offset_mask(features), 3, dim=1)
        offset = torch.cat((dy_dx_first, dy_dx_second), dim=1)
        return offset, torch.sigmoid(mask_logits)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features [N, C_in, H, W] -> [N, C_out, Ho, Wo] (Ho = (H + 2p - d(k-1) - 1) // s + 1)."""
        offset, mask = self.offsets_and_mask(features)
        return deform_conv2d(features, offset, self.weight, self.bias, stride=self.stride,
                             padding=self.padding, dilation=self.dilation, mask=mask)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"deformable_groups={self.deformable_groups}")
