"""Feature pyramid P3-P7 over the backbone's C3, C4, C5 (SPEC §2)."""
from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FPN"]


class FPN(nn.Module):
    """YOLACT's FPN: lateral 1x1 convs, a bilinear top-down path, 3x3 output convs + ReLU on
    P3-P5, and two stride-2 3x3 convs (no ReLU) for P6 and P7.

    Args:
        in_channels: channels of (C3, C4, C5), e.g. (512, 1024, 2048).
        out_channels: channels of every pyramid level (256 in yolact_base).

    Submodules are listed from fine to coarse: ``lateral_convs[0]`` takes C3 and
    ``output_convs[0]`` makes P3 (the reference lists them coarse to fine; see
    ``reference_weights``); ``downsample_convs[0]`` makes P6, ``[1]`` makes P7.
    """

    def __init__(self, *, in_channels: Sequence[int], out_channels: int = 256):
        super().__init__()
        self.lateral_convs = nn.ModuleList(nn.Conv2d(c, out_channels, kernel_size=1) for c in in_channels)
        self.output_convs = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1) for _ in in_channels)
        self.downsample_convs = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=2, padding=1) for _ in range(2))
        self.out_channels = out_channels

    def forward(self, features: List[torch.Tensor]) -> List[torch.Tensor]:
        """[C3, C4, C5] -> [P3, P4, P5, P6, P7], each [N, out_channels, H_l, W_l].

        For a 550 input the sizes are 69, 35, 18, 9, 5. P3-P5 are post-ReLU; P6 and P7 are not.
        """
        # Top-down path, coarse to fine. The reference starts from a zero tensor and adds
        # lat(C5); 0 + x == x exactly in floating point, so we start from lat(C5).
        top_down = self.lateral_convs[-1](features[-1])
        pre_outputs = [top_down]
        for level in range(len(features) - 2, -1, -1):
            lateral = self.lateral_convs[level](features[level])
            # interpolate to the exact lateral size: 18 -> 35 is not exactly 2x (SPEC §2)
            top_down = F.interpolate(top_down, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
            top_down = top_down + lateral
            pre_outputs.insert(0, top_down)  # the path continues from the un-convolved sum
        outputs = [F.relu(conv(x)) for conv, x in zip(self.output_convs, pre_outputs)]
        p6 = _downsample(self.downsample_convs[0], outputs[-1])  # from the ReLU'd P5; no ReLU (SPEC §2)
        p7 = _downsample(self.downsample_convs[1], p6)
        return outputs + [p6, p7]


def _downsample(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a stride-2 padded conv; in float32 where CPU bf16 autocast would train it wrong.

    Under bf16 autocast on a CPU, oneDNN's weight gradient of a strided, padded convolution whose
    input is one pixel wide reads memory nobody wrote (torch 2.14.1: NaN or orders of magnitude off
    in most backwards on the AMX kernels and in about a third on the AVX-512-BF16 ones; never in
    float32, nor where bf16 is emulated). P6 is 1 x 1 for inputs of 64 px and less, and the test model is that small; such a
    map costs nothing in float32. x: [N, C, H, W] -> [N, C', ceil(H / 2), ceil(W / 2)].
    """
    if x.device.type == "cpu" and min(x.shape[-2:]) == 1 and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return conv(x.float())
    return conv(x)
