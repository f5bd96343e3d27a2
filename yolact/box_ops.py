"""Box conversions, the SSD box coder and box-cropping of masks, shared by loss and inference.

Coordinates are relative to the network input ([0, 1]) unless a function says otherwise.
"""
from typing import Tuple

import torch

__all__ = ["BOX_VARIANCES", "cxcywh_to_xyxy", "encode_boxes", "decode_boxes", "crop_window", "crop_masks"]

# SSD variances of the reference (SPEC §4): centre offsets are scaled by 0.1, log sizes by 0.2.
BOX_VARIANCES = (0.1, 0.2)


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) centre-size boxes -> (..., 4) corner boxes, same units."""
    half_size = boxes[..., 2:] / 2
    return torch.cat((boxes[..., :2] - half_size, boxes[..., :2] + half_size), dim=-1)


def encode_boxes(gt_boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Regression targets of corner boxes against their anchors.

    Args:
        gt_boxes: (..., 4) xyxy, relative.
        anchors: (..., 4) cxcywh, relative, broadcastable to gt_boxes.
    Returns:
        (..., 4) deltas (tx, ty, tw, th) with the variances 0.1 / 0.2 applied.
    """
    center_offset = (gt_boxes[..., :2] + gt_boxes[..., 2:]) / 2 - anchors[..., :2]
    center_offset = center_offset / (BOX_VARIANCES[0] * anchors[..., 2:])
    size_ratio = (gt_boxes[..., 2:] - gt_boxes[..., :2]) / anchors[..., 2:]
    return torch.cat((center_offset, torch.log(size_ratio) / BOX_VARIANCES[1]), dim=-1)


def decode_boxes(box_deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`encode_boxes`.

    Args:
        box_deltas: (..., 4) predicted (tx, ty, tw, th).
        anchors: (..., 4) cxcywh, relative, broadcastable to box_deltas.
    Returns:
        (..., 4) xyxy boxes, relative, not clipped.
    """
    centers = anchors[..., :2] + box_deltas[..., :2] * BOX_VARIANCES[0] * anchors[..., 2:]
    sizes = anchors[..., 2:] * torch.exp(box_deltas[..., 2:] * BOX_VARIANCES[1])
    top_left = centers - sizes / 2
    return torch.cat((top_left, sizes + top_left), dim=-1)


def _padded_bounds(low: torch.Tensor, high: torch.Tensor, size: int, padding: int):
    """Relative interval ends -> float pixel bounds, ordered, padded and clamped to [0, size]."""
    low, high = low * size, high * size
    ordered_low, ordered_high = torch.minimum(low, high), torch.maximum(low, high)
    return (ordered_low - padding).clamp(min=0), (ordered_high + padding).clamp(max=size)


def crop_window(boxes: torch.Tensor, size: Tuple[int, int], padding: int = 1) -> torch.Tensor:
    """The pixels :func:`crop_masks` keeps: (n, H, W) bool, True inside each padded box.

    Args:
        boxes: (n, 4) xyxy, relative to the masks' extent.
        size: (H, W) of the masks.
    """
    height, width = size
    x1, x2 = _padded_bounds(boxes[:, 0], boxes[:, 2], width, padding)
    y1, y2 = _padded_bounds(boxes[:, 1], boxes[:, 3], height, padding)
    cols = torch.arange(width, device=boxes.device, dtype=x1.dtype).view(1, 1, width)
    rows = torch.arange(height, device=boxes.device, dtype=y1.dtype).view(1, height, 1)
    keep_cols = (cols >= x1.view(-1, 1, 1)) & (cols < x2.view(-1, 1, 1))  # (n, 1, W)
    keep_rows = (rows >= y1.view(-1, 1, 1)) & (rows < y2.view(-1, 1, 1))  # (n, H, 1)
    return keep_rows & keep_cols


def crop_masks(masks: torch.Tensor, boxes: torch.Tensor, padding: int = 1) -> torch.Tensor:
    """Zero every mask pixel outside its box, as the reference's ``crop`` (SPEC §6.4 step 4).

    The box is scaled to the mask's pixels and padded by ``padding`` pixels; the bounds stay
    floats (no rounding), and pixel (r, c) is kept when ``x1 <= c < x2`` and ``y1 <= r < y2``
    (:func:`crop_window`).

    Args:
        masks: (n, H, W) any float dtype.
        boxes: (n, 4) xyxy, relative to the mask's extent.
    Returns:
        (n, H, W) the cropped masks, same dtype.
    """
    return masks * crop_window(boxes, tuple(masks.shape[1:]), padding).to(masks.dtype)
