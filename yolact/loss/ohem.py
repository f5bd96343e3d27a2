"""Classification loss with online hard negative mining (SPEC §6.2)."""
import torch
import torch.nn.functional as F

__all__ = ["background_loss", "select_hard_negatives", "ohem_classification_loss"]

IGNORE_INDEX = -100  # class target of the anchors that the cross-entropy skips


@torch.no_grad()
def background_loss(cls_logits: torch.Tensor) -> torch.Tensor:
    """-log softmax of the background class, used only to rank negatives (no gradient).

    The reference subtracts one global max over the whole batch before its log-sum-exp; we use
    ``torch.logsumexp``, which subtracts a per-row max. Mathematically equal, safer against
    overflow/underflow (SPEC Decisions 4).

    Args:
        cls_logits: (N, A, C + 1) raw logits, index 0 = background.
    Returns:
        (N, A) background loss.
    """
    return torch.logsumexp(cls_logits, dim=-1) - cls_logits[..., 0]


def select_hard_negatives(
    bg_loss: torch.Tensor,
    conf_t: torch.Tensor,
    *,
    negpos_ratio: int,
    negatives_per_empty_image: int,
    is_empty_image: torch.Tensor,
) -> torch.Tensor:
    """The negatives that OHEM keeps, per image.

    Positive and neutral anchors get loss 0 and are ranked together with the real negatives;
    only after ranking are they removed from the selection. So a real negative whose loss is
    exactly 0 ties with them, and the cleared anchors can take slots of the quota (reference
    quirk kept on purpose, SPEC §6.2). Ties are broken by a stable sort (lower anchor index
    first), which is the same on every device; the reference's unstable CPU sort may order such
    ties differently, but every tied anchor has loss 0, so the loss value does not change.

    Args:
        bg_loss: (N, A) background loss per anchor (see :func:`background_loss`).
        conf_t: (N, A) int64 class targets (-1 neutral, 0 background, > 0 positive).
        negpos_ratio: negatives kept per positive (3 in the reference).
        negatives_per_empty_image: negatives kept for an image flagged empty (SPEC Decisions 6).
        is_empty_image: (N,) bool, images without any non-crowd object.
    Returns:
        (N, A) bool, the selected negatives (all with conf_t == 0).
    """
    num_images, num_anchors = bg_loss.shape
    bg_loss = bg_loss.masked_fill(conf_t != 0, 0.0)
    order = torch.sort(bg_loss, dim=1, descending=True, stable=True).indices  # (N, A)
    positions = torch.arange(num_anchors, device=order.device).expand(num_images, num_anchors)
    rank = torch.empty_like(order).scatter_(1, order, positions)  # (N, A) place in the order
    num_pos = (conf_t > 0).sum(dim=1)  # (N,)
    num_neg = torch.where(is_empty_image, torch.full_like(num_pos, negatives_per_empty_image),
                          negpos_ratio * num_pos).clamp(max=num_anchors - 1)
    return (rank < num_neg[:, None]) & (conf_t == 0)


def ohem_classification_loss(
    cls_logits: torch.Tensor,
    conf_t: torch.Tensor,
    *,
    negpos_ratio: int = 3,
    negatives_per_empty_image: int = 32,
    is_empty_image: torch.Tensor,
) -> torch.Tensor:
    """Summed softmax cross-entropy over the positives and the mined negatives.

    Args:
        cls_logits: (N, A, C + 1) raw logits, index 0 = background.
        conf_t: (N, A) int64 class targets (-1 neutral, 0 background, c + 1 for class c).
        negpos_ratio, negatives_per_empty_image, is_empty_image: see :func:`select_hard_negatives`.
    Returns:
        Scalar, the unweighted, unnormalised sum.
    """
    negatives = select_hard_negatives(
        background_loss(cls_logits), conf_t, negpos_ratio=negpos_ratio,
        negatives_per_empty_image=negatives_per_empty_image, is_empty_image=is_empty_image,
    )
    selected = (conf_t > 0) | negatives  # (N, A)
    # Every anchor goes through the cross-entropy with the unselected ones ignored, instead of
    # indexing with the mask: the same sum and gradient, without a data-dependent size (a
    # host-device sync on CUDA).
    targets = torch.where(selected, conf_t, IGNORE_INDEX)  # (N, A)
    return F.cross_entropy(cls_logits.flatten(0, 1), targets.flatten(), reduction="sum", ignore_index=IGNORE_INDEX)
