"""The lincomb mask loss of the positives (SPEC §6.4) and the GT-mask downsampling it uses.

The kept positives (:func:`kept_positives`) and their assembled masks
(:func:`assemble_cropped_masks`) are drawn and built once per batch (:func:`positive_masks`) and
shared with YOLACT++'s mask-IoU term, as the reference does in one per-image loop.
"""
from typing import List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F

from yolact.box_ops import crop_masks

__all__ = ["downsample_binary_masks", "probability_bce", "KeptPositives", "kept_positives", "assemble_cropped_masks",
           "PositiveMasks", "positive_masks", "positive_mask_loss", "lincomb_mask_loss"]


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


class KeptPositives(NamedTuple):
    """The positive anchors that train the mask branch (and YOLACT++'s mask-IoU head), image after image."""
    image_index: torch.Tensor  # (P,) int64 image of each kept positive
    anchor_index: torch.Tensor  # (P,) int64 its anchor
    counts: List[int]  # (N,) host ints: positives kept per image, summing to P
    ratios: torch.Tensor  # (N,) old/new count per image (1 where nothing was dropped)


def kept_positives(positives: torch.Tensor, masks_to_train: int, generator: Optional[torch.Generator],
                   dtype: torch.dtype) -> KeptPositives:
    """The positive anchors that train the mask branch, image by image.

    An image with more than ``masks_to_train`` positives keeps the first ``masks_to_train`` of a
    random permutation of them (in that order, as the reference) and remembers old/new count.
    The positives per image are read on the host once (the loss's only device-to-host copy:
    ``randperm`` and the split sizes need them); every index is then built on the device. Call
    it once per batch: each call draws the subsets anew from ``generator``.

    Args:
        positives: (N, A) bool.
        dtype: float dtype of the ratios.
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
        return KeptPositives(image_index, image_index, kept_counts, ratios)
    positions = _subset_positions(counts_host, masks_to_train, generator, device)  # (N, K)
    positive_rank = positions[image_index, rank_in_image]  # (P,) rank among the image's positives
    anchor_index = _anchors_of_positives(positives, max(counts_host))[image_index, positive_rank]  # (P,)
    return KeptPositives(image_index, anchor_index, kept_counts, ratios)


def assemble_cropped_masks(prototypes: torch.Tensor, mask_coeffs: torch.Tensor, kept: KeptPositives,
                           boxes: torch.Tensor) -> torch.Tensor:
    """The kept positives' soft masks as the loss sees them: sigmoid(prototypes @ coeffs), cropped
    to ``boxes`` with a padding of 1 prototype pixel (0 outside), in the graph.

    Args:
        prototypes: (N, Hp, Wp, k); mask_coeffs: (N, A, k); kept: :func:`kept_positives`.
        boxes: (P, 4) xyxy relative, the matched GT box of each kept positive.
    Returns:
        (P, Hp, Wp) in [0, 1], ``prototypes.dtype``.
    """
    _, proto_h, proto_w, num_protos = prototypes.shape
    coeffs_per_image = mask_coeffs[kept.image_index, kept.anchor_index].split(kept.counts)  # N x (n_i, k)
    pred_logits = torch.cat([
        coeffs @ protos.reshape(proto_h * proto_w, num_protos).t()  # (n_i, Hp*Wp)
        for coeffs, protos in zip(coeffs_per_image, prototypes.unbind(0))
    ]).view(-1, proto_h, proto_w)  # (P, Hp, Wp)
    # The reference clamps the cropped probabilities to [0, 1] first: a no-op for a sigmoid.
    return crop_masks(torch.sigmoid(pred_logits), boxes, padding=1)


class PositiveMasks(NamedTuple):
    """What the mask loss and the mask-IoU loss share: one subset, one assembly (P kept positives)."""
    kept: KeptPositives
    gt_index: torch.Tensor  # (P,) int64 row of each one's matched GT in the batch's GT
    boxes: torch.Tensor  # (P, 4) xyxy relative, its GT box
    pred_masks: torch.Tensor  # (P, Hp, Wp) cropped soft masks, in the graph
    gt_masks: torch.Tensor  # (P, Hp, Wp) 0/1 GT masks at the prototype size


def positive_masks(prototypes: torch.Tensor, mask_coeffs: torch.Tensor, conf_t: torch.Tensor,
                   idx_t: torch.Tensor, gt_boxes: torch.Tensor, gt_masks: torch.Tensor,
                   gt_offsets: torch.Tensor, *, masks_to_train: int = 100,
                   generator: Optional[torch.Generator] = None) -> PositiveMasks:
    """Draw the kept positives once and assemble their masks once (arguments: :func:`lincomb_mask_loss`)."""
    kept = kept_positives(conf_t > 0, masks_to_train, generator, prototypes.dtype)
    gt_index = gt_offsets[kept.image_index] + idx_t[kept.image_index, kept.anchor_index]  # (P,)
    boxes = gt_boxes[gt_index]  # (P, 4)
    pred_masks = assemble_cropped_masks(prototypes, mask_coeffs, kept, boxes)  # (P, Hp, Wp)
    return PositiveMasks(kept, gt_index, boxes, pred_masks, gt_masks[gt_index])


def positive_mask_loss(positive: PositiveMasks) -> torch.Tensor:
    """The mask loss of :func:`positive_masks`' samples (see :func:`lincomb_mask_loss`), a scalar
    in the graph of every mask parameter, 0 when there is no positive."""
    proto_h, proto_w = positive.pred_masks.shape[1:]
    pixel_loss = probability_bce(positive.pred_masks, positive.gt_masks)  # (P, Hp, Wp)
    boxes = positive.boxes
    # emulate_roi_pooling: the reference multiplies by Hp*Wp here and divides by it at the end.
    box_area = (boxes[:, 2] - boxes[:, 0]) * proto_w * ((boxes[:, 3] - boxes[:, 1]) * proto_h)  # (P,)
    rescale = positive.kept.ratios[positive.kept.image_index]  # (P,)
    return (pixel_loss.sum(dim=(1, 2)) / box_area * rescale).sum()


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
    whose sum is multiplied by old/new count. (``positive_mask_loss(positive_masks(...))``: the
    criterion keeps the samples to share them with YOLACT++'s mask-IoU term.)

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
    return positive_mask_loss(positive_masks(prototypes, mask_coeffs, conf_t, idx_t, gt_boxes, gt_masks,
                                             gt_offsets, masks_to_train=masks_to_train, generator=generator))
