"""The prediction head shared by all pyramid levels: boxes, class logits, mask coefficients (SPEC §4)."""
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PredictionHead", "flatten_dense_predictions"]


def flatten_dense_predictions(dense: torch.Tensor, values_per_anchor: int) -> torch.Tensor:
    """The one dense-head reshape: [N, A*D, H, W] -> [N, H*W*A, D].

    Channel ``a*D + d`` belongs to anchor ``a``; the flat anchor index is ``(y*W + x)*A + a``
    (row-major cells, anchors of a cell adjacent), the order of the anchor generator.
    """
    batch_size = dense.shape[0]
    dense = dense.permute(0, 2, 3, 1)  # [N, H, W, A*D]
    return dense.reshape(batch_size, -1, values_per_anchor)  # [N, H*W*A, D]


class PredictionHead(nn.Module):
    """One head applied to every pyramid level (the reference's ``prediction_layers.0``).

    Per level: ``upfeature`` = conv3x3 + ReLU, then three sibling 3x3 convs on its output:
    ``box_layer`` (A*4), ``cls_layer`` (A*(C+1)) and ``coeff_layer`` (A*k, then tanh).

    Args:
        in_channels: channels of the pyramid levels.
        hidden_channels: channels of the upfeature conv (256 in yolact_base).
        num_classes: foreground classes C; the class layer predicts C+1 (background at 0).
        num_prototypes: k.
        num_anchors: anchors per cell A (3).
    """

    def __init__(self, *, in_channels: int, hidden_channels: int = 256, num_classes: int = 80,
                 num_prototypes: int = 32, num_anchors: int = 3):
        super().__init__()
        self.upfeature = nn.Conv2d(in_channels, hidden_channels, kernel_size=3, padding=1)
        self.box_layer = nn.Conv2d(hidden_channels, num_anchors * 4, kernel_size=3, padding=1)
        self.cls_layer = nn.Conv2d(hidden_channels, num_anchors * (num_classes + 1), kernel_size=3, padding=1)
        self.coeff_layer = nn.Conv2d(hidden_channels, num_anchors * num_prototypes, kernel_size=3, padding=1)
        self.num_classes = num_classes
        self.num_prototypes = num_prototypes
        self.num_anchors = num_anchors
        self.fused_predictor = None  # set by fuse_predictors() for inference

    def fuse_predictors(self) -> None:
        """Inference only: compute the three sibling convs as one conv with their weights stacked
        (box, class, coefficient channels in that order), so the input is read and transformed
        once. Outputs are unchanged up to rounding. The three layers stay, and the state_dict gains
        ``fused_predictor.*``: save checkpoints from an unfused model."""
        layers = (self.box_layer, self.cls_layer, self.coeff_layer)
        fused = nn.Conv2d(layers[0].in_channels, sum(layer.out_channels for layer in layers), kernel_size=3,
                          padding=1).to(device=layers[0].weight.device, dtype=layers[0].weight.dtype)
        with torch.no_grad():
            fused.weight.copy_(torch.cat([layer.weight for layer in layers]))
            fused.bias.copy_(torch.cat([layer.bias for layer in layers]))
        fused.requires_grad_(False)
        self.fused_predictor = fused

    def _predict(self, hidden: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """hidden [N, C_h, H, W] -> box [N, A*4, H, W], class [N, A*(C+1), H, W], coeff [N, A*k, H, W]."""
        if self.fused_predictor is None:
            return self.box_layer(hidden), self.cls_layer(hidden), self.coeff_layer(hidden)
        sizes = [layer.out_channels for layer in (self.box_layer, self.cls_layer, self.coeff_layer)]
        return tuple(self.fused_predictor(hidden).split(sizes, dim=1))

    def forward(self, features: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pyramid levels [P3..P7], each [N, C_in, H_l, W_l] -> (box_deltas, cls_logits, mask_coeffs).

        Returns, with A_total = sum_l H_l*W_l*A anchors concatenated level by level (P3 first):
            box_deltas [N, A_total, 4]: encoded offsets to the anchors (SPEC §4, variances 0.1/0.2);
            cls_logits [N, A_total, C+1]: raw logits, background at index 0 (no softmax);
            mask_coeffs [N, A_total, k]: prototype coefficients in [-1, 1] (tanh).
        """
        box_deltas, cls_logits, mask_coeffs = [], [], []
        for feature in features:
            hidden = F.relu(self.upfeature(feature))
            box, cls, coeff = self._predict(hidden)
            box_deltas.append(flatten_dense_predictions(box, 4))
            cls_logits.append(flatten_dense_predictions(cls, self.num_classes + 1))
            mask_coeffs.append(flatten_dense_predictions(coeff, self.num_prototypes))
        mask_coeffs = torch.tanh(torch.cat(mask_coeffs, dim=1))
        return torch.cat(box_deltas, dim=1), torch.cat(cls_logits, dim=1), mask_coeffs
