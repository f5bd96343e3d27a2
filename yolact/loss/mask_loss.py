"""The lincomb mask loss of the positives (SPEC §6.4) and the GT-mask downsampling it uses."""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

from yolact.box_ops import crop_masks

__all__ = ["downsample_binary_masks", "probability_bce", "lincomb_mask_loss"]


@torch.no_grad()
def downsample_binary_masks(masks: torch.Tensor, size: Tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """Bilinear downsampling (align_corners=False) of 0/1 masks, then binarised with ``> 0.5``.

    Args:
        masks: (n, H, W) any dtype holding 0/1 (uint8, bool or float).
        size: (h, w) output size.
        dtype: float dtype of the result.
    Returns:
        (n, h, w) ``dtype`` 0/1.
    """
    if masks.shape[0] == 0:
        return masks.new_zeros((0, *size), dtype=dtype)
    resized = F.interpolate(masks.to(dtype)[:, None], size=size, mode="bilinear", align_corners=False)
    return (resized[:, 0] > 0.5).to(dtype)


class _ProbabilityBCE(torch.autograd.Function):
    """``F.binary_cross_entropy(probs, targets, reduction="none")`` for 0/1 targets.

    The same values to float rounding (the log clamped at -100) and the very same gradient
    (PyTorch's own BCE backward), but the forward takes one log per pixel, of the probability
    given to the target, instead of both logs: ``log(0)`` at every cropped-out pixel is a slow
    path on CPU (about 6x faster here on 138x138 masks). Targets must be exactly 0 or 1.
    """

    @staticmethod
    def forward(ctx, probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(probs, targets)
        prob_of_target = (1 - targets) + probs * (2 * targets - 1)  # p where t == 1, 1 - p where t == 0
        return prob_of_target.log_().clamp_(min=-100).neg_()

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        probs, targets = ctx.saved_tensors
        reduction_none = 0
        grad_probs = torch.ops.aten.binary_cross_entropy_backward(
            grad_loss, probs, targets, None, reduction_none
        )
        return grad_probs, None


def probability_bce(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-pixel BCE of probabilities in [0, 1] against 0/1 targets, log clamped at -100.

    Equal in value and gradient to ``F.binary_cross_entropy(..., reduction="none")``: a target-1
    pixel with probability 0 costs exactly 100 and passes no gradient (SPEC Decisions 4).
    """
    return _ProbabilityBCE.apply(probs, targets)


def _kept_positives(
    positives: torch.Tensor, masks_to_train: int, generator: Optional[torch.Generator]
) -> Tuple[torch.Tensor, torch.Tensor, List[int], List[float]]:
    """The positive anchors that train the mask branch, image by image.

    An image with more than ``masks_to_train`` positives keeps the first ``masks_to_train`` of a
    random permutation of them (in that order, as the reference) and remembers old/new count.

    Args:
        positives: (N, A) bool.
    Returns:
        image index (P,) and anchor index (P,) of the kept positives, grouped by image;
        the count kept per image; the old/new ratio per image (1.0 when nothing was dropped).
    """
    image_index, anchor_index = torch.nonzero(positives, as_tuple=True)  # (P0,), sorted by image, anchor
    counts = positives.sum(dim=1).tolist()
    kept, kept_counts, ratios, start = [], [], [], 0
    for count in counts:
        rows = torch.arange(start, start + count, device=positives.device)
        start += count
        if count > masks_to_train:
            perm_device = generator.device if generator is not None else torch.device("cpu")
            perm = torch.randperm(count, generator=generator, device=perm_device)[:masks_to_train]
            rows = rows[perm.to(rows.device)]
        kept.append(rows)
        kept_counts.append(rows.numel())
        ratios.append(count / rows.numel() if rows.numel() else 1.0)
    kept_rows = torch.cat(kept)
    return image_index[kept_rows], anchor_index[kept_rows], kept_counts, ratios


def lincomb_mask_loss(
    prototypes: torch.Tensor,
    mask_coeffs: torch.Tensor,
    conf_t: torch.Tensor,
    idx_t: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_masks: torch.Tensor,
    gt_offsets: torch.Tensor,
    *,
    masks_to_train: int = 100,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Mask loss of the positive anchors, summed over the batch.

    For each kept positive: pred = sigmoid(prototypes @ coeffs), cropped to its matched GT box
    (padding 1 proto pixel), then plain BCE against the GT mask, in probability space on
    purpose: the log is clamped at -100, so a target-1 pixel outside the crop costs exactly 100
    (SPEC Decisions 4, not BCE-with-logits). Each instance's sum is divided by its GT-box area in
    prototype pixels; an image with more than ``masks_to_train`` positives keeps a random subset
    whose sum is multiplied by old/new count.

    Args:
        prototypes: (N, Hp, Wp, k) after ReLU.
        mask_coeffs: (N, A, k) after tanh.
        conf_t: (N, A) int64 class targets (> 0 positive).
        idx_t: (N, A) int64 matched GT row per anchor, within its image.
        gt_boxes: (G, 4) xyxy relative, the GT boxes of the whole batch, image after image.
        gt_masks: (G, Hp, Wp) 0/1 float, the GT masks at the prototype size, same order.
        gt_offsets: (N,) int64 row of each image's first GT in ``gt_boxes``/``gt_masks``.
        masks_to_train: cap on the positives per image.
        generator: torch.Generator for the subset (None = torch's global generator).
    Returns:
        Scalar: sum_images (old_n/n) sum_kept [sum_px BCE / GT-box area in proto pixels],
        unweighted and not divided by the positives.
    """
    num_images, proto_h, proto_w, num_protos = prototypes.shape
    image_index, anchor_index, kept_counts, ratios = _kept_positives(conf_t > 0, masks_to_train, generator)
    if image_index.numel() == 0:
        # A zero that stays in the graph, so every mask parameter gets a (zero) gradient.
        return mask_coeffs[:, :0].sum() + prototypes[..., :0].sum()
    coeffs_per_image = mask_coeffs[image_index, anchor_index].split(kept_counts)  # N x (n_i, k)
    pred_logits = torch.cat([
        coeffs @ protos.reshape(proto_h * proto_w, num_protos).t()  # (n_i, Hp*Wp)
        for coeffs, protos in zip(coeffs_per_image, prototypes.unbind(0))
    ]).view(-1, proto_h, proto_w)  # (P, Hp, Wp)
    gt_index = gt_offsets[image_index] + idx_t[image_index, anchor_index]  # (P,) row in the batch's GT
    boxes = gt_boxes[gt_index]  # (P, 4)
    # The reference clamps the cropped probabilities to [0, 1] first: a no-op for a sigmoid.
    pred_masks = crop_masks(torch.sigmoid(pred_logits), boxes, padding=1)  # (P, Hp, Wp)
    pixel_loss = probability_bce(pred_masks, gt_masks[gt_index])
    # emulate_roi_pooling: the reference multiplies by Hp*Wp here and divides by it at the end.
    box_area = (boxes[:, 2] - boxes[:, 0]) * proto_w * ((boxes[:, 3] - boxes[:, 1]) * proto_h)  # (P,)
    rescale = torch.tensor(ratios, dtype=prototypes.dtype, device=prototypes.device)[image_index]  # (P,)
    return (pixel_loss.sum(dim=(1, 2)) / box_area * rescale).sum()
