"""Anchor-to-GT matching of the reference at HEAD (SPEC §6.1), for one image or a batch.

Every anchor gets a class target (``-1`` neutral, ``0`` background, ``c + 1`` for class ``c``),
the row of the GT box it is matched to, and the SSD regression target of that box.
"""
from typing import Dict, List, Sequence, Tuple

import torch
from torchvision.ops import box_iou

from yolact.box_ops import cxcywh_to_xyxy, encode_boxes

__all__ = ["match_anchors", "match_batch", "intersection_over_area"]

NEUTRAL = -1
BACKGROUND = 0


def intersection_over_area(boxes: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """Intersection of each box with each region, divided by the box's own area.

    This is the reference's ``jaccard(..., iscrowd=True)`` with the anchors as first argument.

    Args:
        boxes: (A, 4) xyxy.
        regions: (M, 4) xyxy, same units.
    Returns:
        (A, M) intersection area / box area.
    """
    top_left = torch.maximum(boxes[:, None, :2], regions[None, :, :2])  # (A, M, 2)
    bottom_right = torch.minimum(boxes[:, None, 2:], regions[None, :, 2:])  # (A, M, 2)
    sides = (bottom_right - top_left).clamp(min=0)
    intersection = sides[..., 0] * sides[..., 1]
    box_area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return intersection / box_area[:, None]


def _force_best_anchors(overlaps: torch.Tensor, best_overlap: torch.Tensor, best_gt: torch.Tensor) -> None:
    """Give every GT its own best anchor, greedily and without collisions (SPEC §6.1 step 3).

    G times: the GT whose best anchor overlaps most takes that anchor (overlap set to 2); the
    GT's row and the anchor's column are then set to -1 so neither is used again. Ties go to the
    lowest index, as ``max`` returns the first maximum. Writes ``best_overlap``/``best_gt``.
    """
    overlaps = overlaps.clone()
    for _ in range(overlaps.shape[0]):
        best_overlap_per_gt, best_anchor_per_gt = overlaps.max(dim=1)  # (G,), (G,)
        gt_index = best_overlap_per_gt.max(dim=0).indices
        anchor_index = best_anchor_per_gt[gt_index]
        overlaps[:, anchor_index] = -1
        overlaps[gt_index, :] = -1
        best_overlap[anchor_index] = 2
        best_gt[anchor_index] = gt_index


def match_anchors(
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    crowd_boxes: torch.Tensor,
    anchors: torch.Tensor,
    *,
    pos_iou_threshold: float = 0.5,
    neg_iou_threshold: float = 0.4,
    crowd_iou_threshold: float = 0.7,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Match the anchors of one image to its GT boxes.

    Args:
        gt_boxes: (G, 4) float xyxy relative, non-crowd objects only (G may be 0).
        gt_labels: (G,) int64 0-based classes.
        crowd_boxes: (M, 4) float xyxy relative (M may be 0).
        anchors: (A, 4) float cxcywh relative.
        pos_iou_threshold: best IoU at or above which an anchor is positive.
        neg_iou_threshold: best IoU below which an anchor is background; neutral in between.
        crowd_iou_threshold: a non-positive anchor whose intersection with a crowd box exceeds
            this fraction of its own area becomes neutral (no crowd handling when >= 1).
    Returns:
        conf_t: (A,) int64, -1 neutral, 0 background, c + 1 for class c.
        idx_t: (A,) int64 row of the matched GT box (0 where the image has no GT).
        loc_t: (A, 4) encoded regression target of the matched box (zeros when G == 0).
    """
    anchor_boxes = cxcywh_to_xyxy(anchors)
    num_anchors = anchors.shape[0]
    gt_boxes = gt_boxes.to(device=anchors.device, dtype=anchors.dtype)
    gt_labels = gt_labels.to(device=anchors.device, dtype=torch.int64)
    if gt_boxes.shape[0] == 0:
        # The reference crashes here (an empty max); SPEC Decisions 6: everything background.
        conf_t = anchors.new_full((num_anchors,), BACKGROUND, dtype=torch.int64)
        idx_t = anchors.new_zeros((num_anchors,), dtype=torch.int64)
        loc_t = anchors.new_zeros((num_anchors, 4))
    else:
        overlaps = box_iou(gt_boxes, anchor_boxes)  # (G, A)
        best_overlap, idx_t = overlaps.max(dim=0)  # (A,), (A,)
        _force_best_anchors(overlaps, best_overlap, idx_t)
        conf_t = gt_labels[idx_t] + 1
        conf_t[best_overlap < pos_iou_threshold] = NEUTRAL
        conf_t[best_overlap < neg_iou_threshold] = BACKGROUND
        loc_t = encode_boxes(gt_boxes[idx_t], anchors)
    if crowd_boxes.shape[0] > 0 and crowd_iou_threshold < 1:
        crowd_boxes = crowd_boxes.to(device=anchors.device, dtype=anchors.dtype)
        best_crowd_overlap = intersection_over_area(anchor_boxes, crowd_boxes).max(dim=1).values
        conf_t[(conf_t <= 0) & (best_crowd_overlap > crowd_iou_threshold)] = NEUTRAL
    return conf_t, idx_t, loc_t


def match_batch(
    targets: Sequence[Dict[str, torch.Tensor]],
    anchors: torch.Tensor,
    *,
    pos_iou_threshold: float = 0.5,
    neg_iou_threshold: float = 0.4,
    crowd_iou_threshold: float = 0.7,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`match_anchors` for each image of a batch, stacked.

    Args:
        targets: N dicts with ``boxes`` (n, 4) xyxy relative, ``labels`` (n,) int64 and
            ``crowd_boxes`` (m, 4) xyxy relative (optional key).
        anchors: (A, 4) cxcywh relative.
    Returns:
        conf_t (N, A) int64, idx_t (N, A) int64, loc_t (N, A, 4), as in :func:`match_anchors`.
    """
    matches: List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for target in targets:
        crowd_boxes = target.get("crowd_boxes")
        if crowd_boxes is None:
            crowd_boxes = anchors.new_zeros((0, 4))
        matches.append(match_anchors(
            target["boxes"], target["labels"], crowd_boxes, anchors,
            pos_iou_threshold=pos_iou_threshold, neg_iou_threshold=neg_iou_threshold,
            crowd_iou_threshold=crowd_iou_threshold,
        ))
    conf_t, idx_t, loc_t = (torch.stack(parts) for parts in zip(*matches))
    return conf_t, idx_t, loc_t
