"""YOLACT++'s mask-IoU loss: the mask-IoU head learns the IoU of each assembled mask with its GT.

The samples are the mask loss's own (:class:`~yolact.loss.mask_loss.PositiveMasks`): the same
kept positives and the same cropped soft masks at prototype resolution, as the reference
computes both in one per-image loop. The target of each is the IoU of that mask binarised at 0.5
with its binarised GT mask. As in the reference (and its fixture), the head's input is **not**
detached: the loss also trains the prototypes, the coefficients and the backbone through it.

Positives whose GT mask covers at most ``min_gt_area`` prototype pixels are left out of the
loss. Rather than selecting the others (a data-dependent size, a host-device sync on CUDA), the
head sees every kept positive and the left-out ones weigh 0 (``torch.where``): the same sum.
"""
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

from yolact.loss.mask_loss import PositiveMasks

__all__ = ["MaskIoUSamples", "maskiou_samples", "maskiou_loss"]


class MaskIoUSamples(NamedTuple):
    """The mask-IoU head's samples: every kept positive, ordered by image, then as the mask loss."""
    masks: torch.Tensor  # (P, 1, Hp, Wp) cropped soft masks, in the graph
    target_ious: torch.Tensor  # (P,) IoU of masks > 0.5 with the GT mask, no gradient; 0 where not trained
    labels: torch.Tensor  # (P,) int64 0-based class of the matched GT
    trained: torch.Tensor  # (P,) bool: the GT mask covers more than min_gt_area prototype pixels


def _binary_mask_iou(masks: torch.Tensor, gt_masks: torch.Tensor) -> torch.Tensor:
    """IoU of (n, H, W) 0/1 masks with (n, H, W) 0/1 masks -> (n,); 0/0 gives nan as the reference."""
    intersection = (masks * gt_masks).sum(dim=(1, 2))
    union = masks.sum(dim=(1, 2)) + gt_masks.sum(dim=(1, 2)) - intersection
    return intersection / union


def maskiou_samples(positive: PositiveMasks, gt_labels: torch.Tensor, *,
                    min_gt_area: float = 25.0) -> MaskIoUSamples:
    """The mask-IoU samples of the mask loss's positives.

    Args:
        positive: the mask loss's samples (:func:`~yolact.loss.mask_loss.positive_masks`).
        gt_labels: (G,) int64 0-based classes of the batch's GT, in ``positive.gt_index``'s rows.
        min_gt_area: the reference's ``discard_mask_area`` (25 in yolact_plus), in prototype pixels.
    Returns:
        :class:`MaskIoUSamples`; selecting ``trained`` gives the reference's samples.
    """
    pred_masks, gt_masks = positive.pred_masks, positive.gt_masks  # (P, Hp, Wp) each
    trained = gt_masks.sum(dim=(1, 2)) > min_gt_area  # (P,)
    with torch.no_grad():
        ious = _binary_mask_iou((pred_masks > 0.5).to(pred_masks.dtype), gt_masks)  # (P,)
        # a left-out sample may have an empty GT (0/0): its target must not put a nan in the backward
        target_ious = torch.where(trained, ious, 0.0)
    return MaskIoUSamples(pred_masks[:, None], target_ious, gt_labels[positive.gt_index], trained)


def maskiou_loss(maskiou_head: Callable[[torch.Tensor], torch.Tensor],
                 samples: MaskIoUSamples) -> torch.Tensor:
    """Sum over the trained samples of smooth L1 (beta 1) between the head's IoU at the GT class
    and the target IoU; unweighted and not normalised (the criterion divides by the batch's
    positives, left-out ones included, and multiplies by the weight, 25 in yolact_plus).

    ``maskiou_head`` maps masks (P, 1, Hp, Wp) to IoUs (P, C); it runs on every sample (0 of
    them included), so each of its parameters gets a gradient, zero when nothing is trained.
    """
    predicted = maskiou_head(samples.masks)  # (P, C)
    predicted = predicted.gather(1, samples.labels[:, None])[:, 0]  # (P,)
    per_sample = F.smooth_l1_loss(predicted, samples.target_ious, reduction="none", beta=1.0)  # (P,)
    return torch.where(samples.trained, per_sample, 0.0).sum()
