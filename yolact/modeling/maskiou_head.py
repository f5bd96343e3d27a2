"""YOLACT++'s mask-IoU branch: predicts the IoU of each assembled mask with its object."""
from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MaskIoUHead", "post_forward_heads"]


class MaskIoUHead(nn.Module):
    """Small conv net from one soft mask at prototype resolution to a predicted IoU per class.

    ``layers`` (the reference's ``maskiou_net.maskiou_net``): one 3x3 stride-2 conv without
    padding per entry of ``channels``, each followed by ReLU, then a 1x1 conv to C channels and
    a ReLU; then a max-pool over the remaining extent. yolact_plus at 550: prototypes 138x138,
    channels (8, 16, 32, 64, 128), extent 138 -> 68 -> 33 -> 16 -> 7 -> 3 -> 1.

    Args:
        num_classes: C foreground classes (one predicted IoU per class).
        channels: output channels of the stride-2 convs.
    """

    def __init__(self, *, num_classes: int, channels: Sequence[int] = (8, 16, 32, 64, 128)):
        super().__init__()
        layers, in_channels = [], 1
        for out_channels in channels:
            layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2), nn.ReLU(inplace=True)]
            in_channels = out_channels
        layers += [nn.Conv2d(in_channels, num_classes, kernel_size=1), nn.ReLU(inplace=True)]
        self.layers = nn.Sequential(*layers)
        self.num_classes = num_classes

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        """masks [n, 1, Hp, Wp] in [0, 1] -> predicted IoU [n, C] (>= 0, after ReLU); n may be 0."""
        features = self.layers(masks)  # [n, C, h, w]
        if features.shape[0] == 0:
            return features.new_zeros((0, self.num_classes)) + features.sum()  # stays in the graph
        return F.max_pool2d(features, kernel_size=features.shape[2:]).flatten(1)  # [n, C]


def post_forward_heads(model: nn.Module) -> Dict[str, nn.Module]:
    """The heads of ``model`` that its criterion and post-processor run after its forward, as their
    keyword arguments: ``{"maskiou_head": head}`` for YOLACT++, ``{}`` for YOLACT.

    ``model`` may be wrapped (DistributedDataParallel's or DataParallel's ``module``): the bare
    head is returned. Its parameters are the wrapped model's, so DDP reduces their gradients as
    any other's (each step gives every one of them a gradient, zero when nothing is trained).
    """
    while isinstance(getattr(model, "module", None), nn.Module):
        model = model.module
    head = getattr(model, "maskiou_head", None)
    return {} if head is None else {"maskiou_head": head}
