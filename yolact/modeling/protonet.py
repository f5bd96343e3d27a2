"""Protonet: the k prototype masks, from P3 at twice its resolution (SPEC §3)."""
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Protonet"]


class Protonet(nn.Module):
    """Three 3x3 convs, a bilinear x2 upsample, a 3x3 conv and a 1x1 conv to k prototypes.

    ``layers`` is one Sequential whose indices are the reference's ``proto_net.N``:
    0 conv3x3, 1 ReLU, 2 conv3x3, 3 ReLU, 4 conv3x3, 5 ReLU, 6 upsample x2, 7 ReLU,
    8 conv3x3, 9 ReLU, 10 conv1x1. The ReLU after the upsample is the reference's (its
    ``make_net`` puts a ReLU after every entry); it changes nothing numerically on the
    already non-negative input but is kept so the indices match. A ReLU follows the last conv
    (the prototype activation).

    Args:
        in_channels: channels of P3.
        hidden_channels: channels of the 3x3 convs (256 in yolact_base).
        num_prototypes: k (32).
    """

    def __init__(self, *, in_channels: int, hidden_channels: int = 256, num_prototypes: int = 32):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, hidden_channels, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden_channels, hidden_channels, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden_channels, hidden_channels, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), nn.ReLU(inplace=True),
            nn.Conv2d(hidden_channels, hidden_channels, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden_channels, num_prototypes, kernel_size=1),
        )
        self.num_prototypes = num_prototypes

    def forward(self, p3: torch.Tensor) -> torch.Tensor:
        """P3 [N, C, H3, W3] -> prototypes [N, 2*H3, 2*W3, k] float, >= 0 (channels last).

        For a 550 input: [N, 138, 138, 32].
        """
        prototypes = F.relu(self.layers(p3))
        return prototypes.permute(0, 2, 3, 1).contiguous()  # [N, k, Hp, Wp] -> [N, Hp, Wp, k]
