"""Anchor-to-GT matching of the reference at HEAD (SPEC §6.1), for one image or a batch.

Every anchor gets a class target (``-1`` neutral, ``0`` background, ``c + 1`` for class ``c``),
the row of the GT box it is matched to, and the SSD regression target of that box.
"""
from typing import Dict, Sequence, Tuple

import torch
from torchvision.ops import box_iou

from yolact.box_ops import cxcywh_to_xyxy, encode_boxes
from yolact.loss.batch_targets import pad_per_image

__all__ = ["match_anchors", "match_batch", "match_padded", "intersection_over_area"]

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


def _force_best_anchors(overlaps: torch.Tensor, best_overlap: torch.Tensor, best_gt: torch.Tensor,
                        gt_counts: torch.Tensor) -> None:
    """Give every GT its own best anchor, greedily and without collisions (SPEC §6.1 step 3).

    Per image, G times: the GT whose best anchor overlaps most takes that anchor (overlap set
    to 2); the GT's row and the anchor's column are then set to -1 so neither is used again.
    Ties go to the lowest index, as ``max`` returns the first maximum. All images step together
    with tensor indices (no host-device sync). Step ``s`` assigns an anchor only in images with
    more than ``s`` GT; an image past its count has all its overlaps at -1 already (its real
    rows were cleared one per step, its padding rows start at -1), so clearing a row and a
    column there changes nothing. Writes ``best_overlap``/``best_gt``.

    Args:
        overlaps: (N, G, A) IoU, -1 at padding rows.
        best_overlap: (N, A) best IoU per anchor, written in place.
        best_gt: (N, A) int64 GT row per anchor, written in place.
        gt_counts: (N,) int64 real GT rows per image.
    """
    num_images, num_gt, num_anchors = overlaps.shape
    overlaps = overlaps.clone()
    rows = overlaps.view(num_images * num_gt, num_anchors)  # (N*G, A)
    first_row = torch.arange(num_images, device=overlaps.device)[:, None] * num_gt  # (N, 1)
    anchor_ids = torch.arange(num_anchors, device=overlaps.device)
    all_gt = torch.arange(num_gt, device=overlaps.device)
    for step in range(num_gt):
        best_overlap_per_gt, best_anchor_per_gt = overlaps.max(dim=2)  # (N, G), (N, G)
        gt_index = best_overlap_per_gt.max(dim=1, keepdim=True).indices  # (N, 1)
        anchor_index = best_anchor_per_gt.gather(1, gt_index)  # (N, 1)
        rows.index_fill_(0, (first_row + gt_index).flatten(), -1)  # the GT's row
        column = ((first_row + all_gt) * num_anchors + anchor_index).flatten()  # (N*G,) flat positions
        overlaps.view(-1).index_fill_(0, column, -1)  # the anchor's column
        taken_anchor = (anchor_ids == anchor_index) & (gt_counts > step)[:, None]  # (N, A) one-hot or empty
        best_overlap.masked_fill_(taken_anchor, 2)
        best_gt.copy_(torch.where(taken_anchor, gt_index, best_gt))


def match_padded(
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    gt_valid: torch.Tensor,
    crowd_boxes: torch.Tensor,
    crowd_valid: torch.Tensor,
    anchors: torch.Tensor,
    *,
    pos_iou_threshold: float = 0.5,
    neg_iou_threshold: float = 0.4,
    crowd_iou_threshold: float = 0.7,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Match the anchors of every image of a batch to its GT boxes, padded per image.

    Each image is matched exactly as alone (padding rows never match); no step reads a tensor
    value on the host, so on CUDA nothing waits for the device.

    Args:
        gt_boxes: (N, G, 4) float xyxy relative, non-crowd objects, padded per image.
        gt_labels: (N, G) int64 0-based classes (any value at padding rows).
        gt_valid: (N, G) bool, True at real rows.
        crowd_boxes: (N, M, 4) float xyxy relative, padded per image.
        crowd_valid: (N, M) bool, True at real crowd rows.
        anchors: (A, 4) float cxcywh relative.
        pos_iou_threshold: best IoU at or above which an anchor is positive.
        neg_iou_threshold: best IoU below which an anchor is background; neutral in between.
        crowd_iou_threshold: a non-positive anchor whose intersection with a crowd box exceeds
            this fraction of its own area becomes neutral (no crowd handling when >= 1).
    Returns:
        conf_t: (N, A) int64, -1 neutral, 0 background, c + 1 for class c.
        idx_t: (N, A) int64 row of the matched GT box within its image (0 where it has no GT).
        loc_t: (N, A, 4) encoded regression target of the matched box (zeros where no GT).
    """
    num_images, num_gt = gt_valid.shape
    num_anchors = anchors.shape[0]
    anchor_boxes = cxcywh_to_xyxy(anchors)
    gt_boxes = gt_boxes.to(device=anchors.device, dtype=anchors.dtype)
    gt_labels = gt_labels.to(device=anchors.device, dtype=torch.int64)
    if num_gt == 0:
        # The reference crashes on an image without GT (an empty max); SPEC Decisions 6: background.
        conf_t = anchors.new_full((num_images, num_anchors), BACKGROUND, dtype=torch.int64)
        idx_t = anchors.new_zeros((num_images, num_anchors), dtype=torch.int64)
        loc_t = anchors.new_zeros((num_images, num_anchors, 4))
    else:
        overlaps = box_iou(gt_boxes.reshape(-1, 4), anchor_boxes).view(num_images, num_gt, num_anchors)
        overlaps = overlaps.masked_fill(~gt_valid[:, :, None], -1)  # (N, G, A)
        best_overlap, idx_t = overlaps.max(dim=1)  # (N, A), (N, A)
        _force_best_anchors(overlaps, best_overlap, idx_t, gt_valid.sum(dim=1))
        conf_t = gt_labels.gather(1, idx_t) + 1
        conf_t = torch.where(best_overlap < pos_iou_threshold, NEUTRAL, conf_t)
        conf_t = torch.where(best_overlap < neg_iou_threshold, BACKGROUND, conf_t)
        matched_boxes = gt_boxes.gather(1, idx_t[:, :, None].expand(num_images, num_anchors, 4))  # (N, A, 4)
        # An image without GT matched a padding box (encoded to -inf): its targets are zeros.
        has_gt = gt_valid.any(dim=1)[:, None, None]  # (N, 1, 1)
        loc_t = torch.where(has_gt, encode_boxes(matched_boxes, anchors), 0.0)
    if crowd_boxes.shape[1] > 0 and crowd_iou_threshold < 1:
        crowd_boxes = crowd_boxes.to(device=anchors.device, dtype=anchors.dtype)
        num_crowds = crowd_boxes.shape[1]
        crowd_overlap = intersection_over_area(anchor_boxes, crowd_boxes.reshape(-1, 4))  # (A, N*M)
        crowd_overlap = crowd_overlap.view(num_anchors, num_images, num_crowds).permute(1, 0, 2)  # (N, A, M)
        crowd_overlap = crowd_overlap.masked_fill(~crowd_valid[:, None, :], float("-inf"))
        best_crowd_overlap = crowd_overlap.max(dim=2).values  # (N, A)
        conf_t = torch.where((conf_t <= 0) & (best_crowd_overlap > crowd_iou_threshold), NEUTRAL, conf_t)
    return conf_t, idx_t, loc_t


def match_anchors(
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    crowd_boxes: torch.Tensor,
    anchors: torch.Tensor,
    **thresholds: float,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Match the anchors of one image to its GT boxes (:func:`match_padded` for a batch of one).

    Args:
        gt_boxes: (G, 4) float xyxy relative, non-crowd objects only (G may be 0).
        gt_labels: (G,) int64 0-based classes.
        crowd_boxes: (M, 4) float xyxy relative (M may be 0).
        anchors: (A, 4) float cxcywh relative.
        thresholds: ``pos_iou_threshold``, ``neg_iou_threshold``, ``crowd_iou_threshold`` of
            :func:`match_padded` (keyword arguments).
    Returns:
        conf_t: (A,) int64, -1 neutral, 0 background, c + 1 for class c.
        idx_t: (A,) int64 row of the matched GT box (0 where the image has no GT).
        loc_t: (A, 4) encoded regression target of the matched box (zeros when G == 0).
    """
    gt_valid = torch.ones((1, gt_boxes.shape[0]), dtype=torch.bool, device=anchors.device)
    crowd_valid = torch.ones((1, crowd_boxes.shape[0]), dtype=torch.bool, device=anchors.device)
    conf_t, idx_t, loc_t = match_padded(
        gt_boxes[None], gt_labels[None], gt_valid, crowd_boxes[None], crowd_valid, anchors, **thresholds)
    return conf_t[0], idx_t[0], loc_t[0]


def _crowd_boxes(target: Dict[str, torch.Tensor], anchors: torch.Tensor) -> torch.Tensor:
    """(m, 4) the target's crowd boxes on the anchors' device and dtype ((0, 4) when it has none)."""
    crowd_boxes = target.get("crowd_boxes")
    if crowd_boxes is None:
        return anchors.new_zeros((0, 4))
    return crowd_boxes.to(device=anchors.device, dtype=anchors.dtype)


def match_batch(
    targets: Sequence[Dict[str, torch.Tensor]],
    anchors: torch.Tensor,
    **thresholds: float,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`match_padded` on the targets of a batch: every image as :func:`match_anchors` alone.

    Args:
        targets: N dicts with ``boxes`` (n, 4) xyxy relative, ``labels`` (n,) int64 and
            ``crowd_boxes`` (m, 4) xyxy relative (optional key).
        anchors: (A, 4) cxcywh relative.
        thresholds: keyword arguments of :func:`match_padded`, as for :func:`match_anchors`.
    Returns:
        conf_t (N, A) int64, idx_t (N, A) int64, loc_t (N, A, 4), as in :func:`match_padded`.
    """
    device, dtype = anchors.device, anchors.dtype
    gt_boxes, gt_valid = pad_per_image([t["boxes"].to(device=device, dtype=dtype) for t in targets])
    gt_labels, _ = pad_per_image([t["labels"].to(device=device, dtype=torch.int64) for t in targets])
    crowd_boxes, crowd_valid = pad_per_image([_crowd_boxes(t, anchors) for t in targets])
    return match_padded(gt_boxes, gt_labels, gt_valid, crowd_boxes, crowd_valid, anchors, **thresholds)
