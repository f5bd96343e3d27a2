"""Standard (sequential) per-class NMS, the reference's ``--fast_nms=False`` path (SPEC §7).

The reference runs a Cython NMS per class; here torchvision's ``batched_nms`` does the work.
Two conventions differ from that Cython code, on purpose: areas have no +1 and a box is
suppressed when IoU > threshold (the Cython code uses +1 areas on boxes scaled by 550 and
IoU >= threshold). The returned dict has the keys of :mod:`yolact.postprocess.fast_nms`.
"""
from typing import Dict, Optional

import torch
from torchvision.ops import batched_nms

__all__ = ["standard_nms"]


def _per_class_candidates(scores: torch.Tensor, conf_threshold: Optional[float], top_k: Optional[int]):
    """Flattened (score, candidate index, class) of each class's best candidates.

    Args:
        scores: (C, A) class probabilities.
    Returns:
        three (M,) tensors: scores, candidate indices (into A), 0-based classes.
    """
    num_classes, num_candidates = scores.shape
    num_per_class = num_candidates if top_k is None else min(top_k, num_candidates)
    class_scores, class_indices = scores.topk(num_per_class, dim=1)  # (C, K), descending
    labels = torch.arange(num_classes, device=scores.device)[:, None].expand_as(class_indices)
    if conf_threshold is None:
        return class_scores.reshape(-1), class_indices.reshape(-1), labels.reshape(-1)
    # The top K of the candidates above the threshold are the top K that are above it.
    above = class_scores > conf_threshold
    return class_scores[above], class_indices[above], labels[above]


def standard_nms(boxes: torch.Tensor, scores: torch.Tensor, mask_coeffs: torch.Tensor, *,
                 iou_threshold: float = 0.5, conf_threshold: Optional[float] = 0.05,
                 top_k: Optional[int] = 200,
                 max_detections: Optional[int] = 100) -> Dict[str, torch.Tensor]:
    """Per-class standard NMS on YOLACT's candidates.

    Per class, the candidates with score > ``conf_threshold`` are kept (the reference's
    per-class threshold; None skips it), then at most ``top_k`` of them (None: all), then
    greedy NMS suppresses a box whose IoU with a kept higher-scored box of its class is
    > ``iou_threshold``; the survivors of all classes are ranked by score and cut at
    ``max_detections`` (None: no cap).

    Args:
        boxes: (A, 4) xyxy of the candidates (relative).
        scores: (C, A) class probabilities of the candidates, background excluded.
        mask_coeffs: (A, k) mask coefficients of the candidates.
    Returns:
        ``boxes`` (n, 4), ``labels`` int64 (n,), ``scores`` (n,) descending, ``mask_coeffs``
        (n, k), ``indices`` int64 (n,) rows of the input candidates.
    """
    flat_scores, flat_indices, flat_labels = _per_class_candidates(scores, conf_threshold, top_k)
    kept = batched_nms(boxes[flat_indices], flat_scores, flat_labels, iou_threshold)  # by score
    if max_detections is not None:
        kept = kept[:max_detections]
    indices = flat_indices[kept]
    return {"boxes": boxes[indices], "labels": flat_labels[kept], "scores": flat_scores[kept],
            "mask_coeffs": mask_coeffs[indices], "indices": indices}
