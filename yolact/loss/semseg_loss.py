"""Semantic segmentation loss of the training-only branch (SPEC §5)."""
import torch
import torch.nn.functional as F

__all__ = ["semantic_segmentation_targets", "semantic_segmentation_loss"]


@torch.no_grad()
def semantic_segmentation_targets(
    gt_masks: torch.Tensor, gt_labels: torch.Tensor, gt_image_index: torch.Tensor, *, num_images: int,
    num_classes: int,
) -> torch.Tensor:
    """Per-class union of the instance masks of each image.

    Args:
        gt_masks: (n, H, W) 0/1 float, the non-crowd masks of the whole batch at the logit size.
        gt_labels: (n,) int64 0-based classes.
        gt_image_index: (n,) int64 image of each mask.
        num_images: N.
        num_classes: C foreground classes.
    Returns:
        (N, C, H, W) 0/1 in the dtype of ``gt_masks``.
    """
    height, width = gt_masks.shape[-2:]
    targets = gt_masks.new_zeros((num_images * num_classes, height * width))
    channel = gt_image_index * num_classes + gt_labels  # (n,) row in (N*C)
    # Masks are 0/1, so the sum clamped at 1 is their union (the reference's running max).
    targets.index_add_(0, channel, gt_masks.reshape(-1, height * width)).clamp_(max=1)
    return targets.view(num_images, num_classes, height, width)


def semantic_segmentation_loss(
    semseg_logits: torch.Tensor, gt_masks: torch.Tensor, gt_labels: torch.Tensor, gt_image_index: torch.Tensor
) -> torch.Tensor:
    """Summed BCE-with-logits against the class unions, divided by the logit area H*W.

    Args:
        semseg_logits: (N, C, H, W) raw logits.
        gt_masks, gt_labels, gt_image_index: see :func:`semantic_segmentation_targets`.
    Returns:
        Scalar: sum over the batch / (H*W), unweighted, not divided by N.
    """
    num_images, num_classes, height, width = semseg_logits.shape
    targets = semantic_segmentation_targets(
        gt_masks, gt_labels, gt_image_index, num_images=num_images, num_classes=num_classes
    )
    return F.binary_cross_entropy_with_logits(semseg_logits, targets, reduction="sum") / (height * width)
