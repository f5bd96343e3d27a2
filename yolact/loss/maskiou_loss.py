"""YOLACT++'s mask-IoU loss: the mask-IoU head learns the IoU of each assembled mask with its GT.

The samples are the positive anchors' masks as the mask loss sees them: sigmoid(prototypes @
coeffs), cropped to the matched GT box (padding 1 prototype pixel), at prototype resolution. The
target of each is the IoU of that mask binarised at 0.5 with its binarised GT mask. As in the
reference (and its fixture), the head's input is **not** detached: the loss also trains the
prototypes, the coefficients and the backbone through it.
"""
from typing import Callable, Dict, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F

from yolact.box_ops import crop_masks
from yolact.loss.mask_loss import _kept_positives, downsample_binary_masks

__all__ = ["MaskIoUSamples", "maskiou_samples", "maskiou_loss"]


class MaskIoUSamples(NamedTuple):
    """The mask-IoU head's training samples, ordered by image, then anchor index."""
    masks: torch.Tensor  # (n, 1, Hp, Wp) cropped soft masks, in the graph
    target_ious: torch.Tensor  # (n,) IoU of masks > 0.5 with the GT mask, no gradient
    labels: torch.Tensor  # (n,) int64 0-based class of the matched GT


def _binary_mask_iou(masks: torch.Tensor, gt_masks: torch.Tensor) -> torch.Tensor:
    """IoU of (n, H, W) 0/1 masks with (n, H, W) 0/1 masks -> (n,); 0/0 gives nan as the reference."""
    intersection = (masks * gt_masks).sum(dim=(1, 2))
    union = masks.sum(dim=(1, 2)) + gt_masks.sum(dim=(1, 2)) - intersection
    return intersection / union


def maskiou_samples(prototypes: torch.Tensor, mask_coeffs: torch.Tensor, conf_t: torch.Tensor,
                    idx_t: torch.Tensor, targets: Sequence[Dict[str, torch.Tensor]], *,
                    min_gt_area: float = 25.0, masks_to_train: int = 100,
                    generator: Optional[torch.Generator] = None) -> MaskIoUSamples:
    """The samples of the positive anchors whose GT mask covers more than ``min_gt_area``
    prototype pixels (the reference's ``discard_mask_area``, 25 in yolact_plus).

    Args:
        prototypes: (N, Hp, Wp, k) after ReLU; mask_coeffs: (N, A, k) after tanh.
        conf_t, idx_t: (N, A) int64 matching (conf_t > 0 positive; idx_t GT row in the image).
        targets: N dicts with ``boxes`` (n, 4) xyxy relative, ``labels`` (n,), ``masks`` (n, H, W) 0/1.
        masks_to_train: at most this many positives per image (random subset beyond).
    """
    device, dtype = prototypes.device, prototypes.dtype
    proto_h, proto_w, num_protos = prototypes.shape[1:]
    # the mask loss's rule for more than masks_to_train positives; the subset is drawn anew here
    image_index, anchor_index, _, _ = _kept_positives(conf_t > 0, masks_to_train, generator, dtype)
    gt_counts = torch.tensor([t["boxes"].shape[0] for t in targets], device=device)  # (N,)
    gt_index = (torch.cumsum(gt_counts, 0) - gt_counts)[image_index] + idx_t[image_index, anchor_index]
    gt_boxes = torch.cat([t["boxes"].to(device=device, dtype=dtype) for t in targets])[gt_index]  # (P, 4)
    gt_labels = torch.cat([t["labels"].to(device=device, dtype=torch.int64) for t in targets])[gt_index]
    gt_masks = downsample_binary_masks(torch.cat([t["masks"].to(device) for t in targets])[gt_index],
                                       (proto_h, proto_w), dtype)  # (P, Hp, Wp)
    keep = gt_masks.sum(dim=(1, 2)) > min_gt_area  # (P,)
    image_index, anchor_index = image_index[keep], anchor_index[keep]
    coeffs = mask_coeffs[image_index, anchor_index]  # (n, k)
    protos = prototypes[image_index].reshape(-1, proto_h * proto_w, num_protos)  # (n, Hp*Wp, k)
    logits = torch.bmm(protos, coeffs[:, :, None]).view(-1, proto_h, proto_w)  # (n, Hp, Wp)
    masks = crop_masks(torch.sigmoid(logits), gt_boxes[keep], padding=1)  # (n, Hp, Wp)
    with torch.no_grad():
        target_ious = _binary_mask_iou((masks > 0.5).to(dtype), gt_masks[keep])
    return MaskIoUSamples(masks[:, None], target_ious, gt_labels[keep])


def maskiou_loss(maskiou_head: Callable[[torch.Tensor], torch.Tensor],
                 samples: MaskIoUSamples) -> torch.Tensor:
    """Sum over the samples of smooth L1 (beta 1) between the head's IoU at the GT class and the
    target IoU; unweighted and not normalised (the criterion divides by the batch's positives,
    discarded ones included, and multiplies by the weight, 25 in yolact_plus)."""
    predicted = maskiou_head(samples.masks)  # (n, C)
    predicted = predicted[torch.arange(predicted.shape[0], device=predicted.device), samples.labels]  # (n,)
    return F.smooth_l1_loss(predicted, samples.target_ious, reduction="sum", beta=1.0)
