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


def _anchors_of_positives(positives: torch.Tensor, max_count: int) -> torch.Tensor:
    """(N, max_count) int64: row i starts with the anchors of image i's positives, ascending.

    A stable descending sort of the 0/1 flags puts the positives first in anchor order; the
    columns past an image's own count hold other anchors and must not be used.
    """
    order = torch.sort(positives.to(torch.uint8), dim=1, descending=True, stable=True).indices  # (N, A)
    return order[:, :max_count]


def _subset_positions(counts: List[int], masks_to_train: int, generator: Optional[torch.Generator],
                      device: torch.device) -> torch.Tensor:
    """(N, K) int64: for each kept positive of each image, its rank among the image's positives.

    K is the largest kept count. An image with more than ``masks_to_train`` positives keeps the
    first ``masks_to_train`` of ``torch.randperm(count)`` on ``generator`` (in that random order,
    as the reference); the others keep their positives in order. Columns past an image's kept
    count are unused. The permutations are drawn on the generator's device in image order, as
    the reference, and copied to ``device`` together (an asynchronous copy from pinned memory
    when they are drawn on the CPU for a CUDA loss).
    """
    kept_max = min(max(counts), masks_to_train)
    if kept_max == max(counts):  # nothing to subsample
        return torch.arange(kept_max, device=device).expand(len(counts), kept_max)
    perm_device = generator.device if generator is not None else torch.device("cpu")
    rows = [torch.randperm(count, generator=generator, device=perm_device)[:masks_to_train]
            if count > masks_to_train else torch.arange(kept_max, device=perm_device)
            for count in counts]
    positions = torch.stack(rows)  # (N, K) on perm_device
    if positions.device.type == "cpu" and device.type == "cuda":
        # From pinned memory the copy is queued behind the running kernels; the host does not wait.
        return positions.pin_memory().to(device, non_blocking=True)
    return positions.to(device)


def _kept_positives(
    positives: torch.Tensor, masks_to_train: int, generator: Optional[torch.Generator], dtype: torch.dtype
) -> Tuple[torch.Tensor, torch.Tensor, List[int], torch.Tensor]:
    """The positive anchors that train the mask branch, image by image.

    An image with more than ``masks_to_train`` positives keeps the first ``masks_to_train`` of a
    random permutation of them (in that order, as the reference) and remembers old/new count.
    The positives per image are read on the host once (the loss's only device-to-host copy:
    ``randperm`` and the split sizes need them); every index is then built on the device.

    Args:
        positives: (N, A) bool.
        dtype: float dtype of the ratios.
    Returns:
        image index (P,) and anchor index (P,) of the kept positives, grouped by image;
        the count kept per image (host ints); the old/new ratio per image (N,) ``dtype``
        (1 where nothing was dropped).
    """
    counts = positives.sum(dim=1)  # (N,)
    counts_host = counts.tolist()
    kept_counts = [min(count, masks_to_train) for count in counts_host]
    kept = counts.clamp(max=masks_to_train)  # (N,)
    ratios = counts.to(dtype) / kept.clamp(min=1).to(dtype)  # (N,)
    device = positives.device
    image_index = torch.cat([torch.full((count,), image, dtype=torch.int64, device=device)
                             for image, count in enumerate(kept_counts)])  # (P,)
    rank_in_image = torch.cat([torch.arange(count, device=device) for count in kept_counts])  # (P,)
    if image_index.numel() == 0:
        return image_index, image_index, kept_counts, ratios
    positions = _subset_positions(counts_host, masks_to_train, generator, device)  # (N, K)
    positive_rank = positions[image_index, rank_in_image]  # (P,) rank among the image's positives
    anchor_index = _anchors_of_positives(positives, max(counts_host))[image_index, positive_rank]  # (P,)
    return image_index, anchor_index, kept_counts, ratios


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
    image_index, anchor_index, kept_counts, ratios = _kept_positives(
        conf_t > 0, masks_to_train, generator, prototypes.dtype)
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
    rescale = ratios[image_index]  # (P,)
    return (pixel_loss.sum(dim=(1, 2)) / box_area * rescale).sum()
