"""Synthetic network outputs and targets of realistic shape, for benchmarks and tests."""
from typing import Dict, List, Tuple

import torch

__all__ = ["synthetic_targets", "synthetic_outputs", "outputs_from_leaves"]


def synthetic_targets(batch_size: int, objects_per_image: int, input_size: int, num_classes: int,
                      generator: torch.Generator) -> List[Dict[str, torch.Tensor]]:
    """Per-image targets with box-shaped masks: boxes (n,4) relative xyxy, labels, masks (n,S,S)."""
    targets = []
    for image_index in range(batch_size):
        corners = torch.rand(objects_per_image, 2, generator=generator) * 0.7
        sizes = 0.05 + torch.rand(objects_per_image, 2, generator=generator) * 0.25
        boxes = torch.cat([corners, corners + sizes], dim=1).clamp(max=1.0)
        masks = torch.zeros(objects_per_image, input_size, input_size, dtype=torch.uint8)
        for k, (x1, y1, x2, y2) in enumerate((boxes * input_size).long().tolist()):
            masks[k, y1:y2, x1:x2] = 1
        targets.append({"boxes": boxes, "labels": torch.randint(num_classes, (objects_per_image,), generator=generator),
                        "masks": masks, "crowd_boxes": torch.zeros(0, 4), "image_id": image_index,
                        "orig_size": (input_size, input_size)})
    return targets


def synthetic_outputs(batch_size: int, num_anchors: int, num_classes: int, proto_size: int, num_prototypes: int,
                      semseg_size: int, generator: torch.Generator, anchors: torch.Tensor,
                      requires_grad: bool = True) -> Tuple[Dict[str, torch.Tensor], List[torch.Tensor]]:
    """Random raw outputs of the model's training contract, plus the leaves that need gradients."""
    def leaf(*shape, scale=1.0):
        return (torch.randn(*shape, generator=generator) * scale).requires_grad_(requires_grad)

    leaves = [leaf(batch_size, num_anchors, num_classes + 1), leaf(batch_size, num_anchors, 4, scale=0.5),
              leaf(batch_size, num_anchors, num_prototypes), leaf(batch_size, proto_size, proto_size, num_prototypes),
              leaf(batch_size, num_classes, semseg_size, semseg_size)]
    return outputs_from_leaves(leaves, anchors), leaves


def outputs_from_leaves(leaves: List[torch.Tensor], anchors: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The output dict of :func:`synthetic_outputs`' leaves (tanh coefficients, ReLU prototypes)."""
    return {"cls_logits": leaves[0], "box_deltas": leaves[1], "mask_coeffs": torch.tanh(leaves[2]),
            "prototypes": torch.relu(leaves[3]), "semseg_logits": leaves[4], "anchors": anchors}
