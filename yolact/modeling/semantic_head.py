"""Semantic segmentation head: an auxiliary training-only branch on P3 (SPEC §5)."""
import torch
from torch import nn

__all__ = ["SemanticHead"]


class SemanticHead(nn.Module):
    """A 1x1 conv from P3 to one logit map per foreground class (no background channel).

    Args:
        in_channels: channels of P3.
        num_classes: foreground classes C (80 for COCO).
    """

    def __init__(self, *, in_channels: int, num_classes: int = 80):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, kernel_size=1)

    def forward(self, p3: torch.Tensor) -> torch.Tensor:
        """P3 [N, C_in, H3, W3] -> semseg_logits [N, C, H3, W3] (raw logits; 69x69 at 550)."""
        return self.conv(p3)
