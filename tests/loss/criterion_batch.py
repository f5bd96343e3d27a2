"""A synthetic batch at yolact_base's sizes for the criterion: 19248 anchors, 81 classes, k = 32.

Shared by the sync-count test and the CUDA comparisons (``tests/cuda``).
"""
from typing import Dict, List, Tuple

import torch

from yolact.modeling.anchors import AnchorGenerator

NUM_CLASSES = 80
NUM_PROTOTYPES = 32
FEATURE_SIZES = ((69, 69), (35, 35), (18, 18), (9, 9), (5, 5))  # P3..P7 at 550
PROTO_SIZE, SEMSEG_SIZE, MASK_SIZE = 138, 69, 276


def base_anchors(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(19248, 4) cxcywh relative, the anchors of yolact_base at 550."""
    generator = AnchorGenerator(scales_per_level=[(24,), (48,), (96,), (192,), (384,)],
                                aspect_ratios=(1.0, 0.5, 2.0))
    return generator(FEATURE_SIZES, 550, device=torch.device("cpu"), dtype=dtype)


def random_targets(num_images: int, objects_per_image: int, *, seed: int = 0) -> List[Dict[str, torch.Tensor]]:
    """Boxes of side 0.1..0.6, a filled ellipse as mask, random classes; image 0 gets one crowd box
    and, when there are several images, the last one has no object."""
    generator = torch.Generator().manual_seed(seed)
    targets = []
    for image in range(num_images):
        count = 0 if image == num_images - 1 and num_images > 2 else objects_per_image
        sizes = 0.1 + 0.5 * torch.rand((count, 2), generator=generator)
        corners = torch.rand((count, 2), generator=generator) * (1 - sizes)
        boxes = torch.cat((corners, corners + sizes), dim=1)  # (n, 4) xyxy
        coords = (torch.arange(MASK_SIZE) + 0.5) / MASK_SIZE
        centers, radii = (boxes[:, :2] + boxes[:, 2:]) / 2, sizes / 2
        dx = (coords[None, None, :] - centers[:, 0, None, None]) / radii[:, 0, None, None]  # (n, 1, W)
        dy = (coords[None, :, None] - centers[:, 1, None, None]) / radii[:, 1, None, None]  # (n, H, 1)
        masks = (dx ** 2 + dy ** 2 <= 1).to(torch.uint8)  # (n, H, W)
        crowd_boxes = torch.tensor([[0.6, 0.6, 0.95, 0.95]]) if image == 0 else torch.zeros((0, 4))
        targets.append({"boxes": boxes, "labels": torch.randint(0, NUM_CLASSES, (count,), generator=generator),
                        "masks": masks, "crowd_boxes": crowd_boxes})
    return targets


def random_outputs(num_images: int, *, seed: int = 0, dtype: torch.dtype = torch.float32) -> Dict[str, torch.Tensor]:
    """Model outputs as ``Yolact.forward`` gives them in training, leaves that require grad."""
    generator = torch.Generator().manual_seed(seed)
    anchors = base_anchors(dtype)
    num_anchors = anchors.shape[0]

    def leaf(*shape, activation=None):
        values = torch.randn(*shape, generator=generator, dtype=dtype)
        return (values if activation is None else activation(values)).detach().requires_grad_()

    return {
        "cls_logits": leaf(num_images, num_anchors, NUM_CLASSES + 1),
        "box_deltas": leaf(num_images, num_anchors, 4),
        "mask_coeffs": leaf(num_images, num_anchors, NUM_PROTOTYPES, activation=torch.tanh),
        "prototypes": leaf(num_images, PROTO_SIZE, PROTO_SIZE, NUM_PROTOTYPES, activation=torch.relu),
        "anchors": anchors,
        "semseg_logits": leaf(num_images, NUM_CLASSES, SEMSEG_SIZE, SEMSEG_SIZE),
    }


def criterion_batch(num_images: int, objects_per_image: int, *, seed: int = 0
                    ) -> Tuple[Dict[str, torch.Tensor], List[Dict[str, torch.Tensor]]]:
    """(outputs, targets) for ``YolactCriterion(num_classes=80)``."""
    return random_outputs(num_images, seed=seed), random_targets(num_images, objects_per_image, seed=seed)
