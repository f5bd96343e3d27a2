"""Batching of detection samples: stacked images, one target dict per image."""
from typing import Dict, List, Sequence, Tuple

import torch

__all__ = ["collate_detections"]


def collate_detections(batch: Sequence[Tuple[torch.Tensor, Dict]]) -> Tuple[torch.Tensor, List[Dict]]:
    """[(image [3, S, S], target), ...] -> (images [B, 3, S, S], [target, ...]).

    Images keep their dtype: float32 normalised, or uint8 RGB with ``data.uint8_images``.

    Targets keep their own sizes (n objects, m crowd boxes per image), so they stay a list.
    """
    images = torch.stack([image for image, _ in batch])
    return images, [target for _, target in batch]
