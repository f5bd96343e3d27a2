"""A batch's per-image targets as tensors on the loss device, built without host-device syncs.

Two layouts of the same objects: padded per image (for matching, where each image is a row)
and concatenated image after image (for the mask and semantic terms, where the big masks
should not be padded). Every size comes from tensor shapes, never from tensor values, so
nothing here makes the host wait for the device; the only copies are those of ``targets``
tensors that are not on ``device`` yet.
"""
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import torch
from torch.nn.utils.rnn import pad_sequence

__all__ = ["pad_per_image", "ConcatenatedTargets", "concatenate_targets"]


def pad_per_image(rows_per_image: Sequence[torch.Tensor], *, padding_value: float = 0.0
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Stack per-image rows into one tensor padded to the largest image.

    Args:
        rows_per_image: N tensors (n_i, ...) on one device, same trailing shape and dtype.
        padding_value: value of the padding rows.
    Returns:
        padded (N, max n_i, ...) and valid (N, max n_i) bool, True at the real rows.
    """
    padded = pad_sequence(list(rows_per_image), batch_first=True, padding_value=padding_value)
    valid = pad_sequence([torch.ones(rows.shape[0], dtype=torch.bool, device=rows.device) for rows in rows_per_image],
                         batch_first=True)
    return padded, valid


@dataclass(frozen=True)
class ConcatenatedTargets:
    """The non-crowd objects of a batch, image after image (G objects in all, N images)."""

    boxes: torch.Tensor  # (G, 4) xyxy relative, float
    labels: torch.Tensor  # (G,) int64 0-based classes
    masks: torch.Tensor  # (G, H, W) as given (uint8 0/1)
    image_index: torch.Tensor  # (G,) int64 image of each object
    counts: torch.Tensor  # (N,) int64 objects per image
    offsets: torch.Tensor  # (N,) int64 row of each image's first object


def concatenate_targets(targets: Sequence[Dict[str, torch.Tensor]], *, device: torch.device,
                        dtype: torch.dtype) -> ConcatenatedTargets:
    """The ``boxes`` (in ``dtype``), ``labels`` and ``masks`` of N target dicts, concatenated on ``device``."""
    counts_host = [t["boxes"].shape[0] for t in targets]
    image_index = torch.cat([torch.full((count,), image, dtype=torch.int64, device=device)
                             for image, count in enumerate(counts_host)])  # (G,)
    counts = torch.zeros(len(targets), dtype=torch.int64, device=device).index_add_(
        0, image_index, torch.ones_like(image_index))  # (N,)
    return ConcatenatedTargets(
        boxes=torch.cat([t["boxes"].to(device=device, dtype=dtype) for t in targets]),
        labels=torch.cat([t["labels"].to(device=device, dtype=torch.int64) for t in targets]),
        masks=torch.cat([t["masks"].to(device) for t in targets]),
        image_index=image_index,
        counts=counts,
        offsets=torch.cumsum(counts, dim=0) - counts,
    )
