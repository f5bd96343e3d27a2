"""Copy-paste: objects of another image pasted on top of this one (Ghiasi et al., 2021).

The source image is resized to the target's size (no aspect preservation) and, when asked,
flipped left-right; the pixels of the chosen source objects replace the target's. Target
objects lose exactly the pasted pixels: an object keeping less than ``min_visible_fraction``
of its pixels is dropped, and an object that lost pixels gets the tight box of what is left
(boxes of untouched objects are kept as they are). Pasted objects keep their (resized)
masks and boxes; crowd boxes of the target stay, those of the source are not pasted.
"""
from typing import Tuple

import numpy as np

from yolact.data.instances import Instances, boxes_from_masks, flip_instances, resize_instances, select

__all__ = ["copy_paste"]


def copy_paste(image: np.ndarray, instances: Instances, source_image: np.ndarray, source: Instances,
               chosen: np.ndarray, *, flip: bool = False,
               min_visible_fraction: float = 0.1) -> Tuple[np.ndarray, Instances]:
    """Paste the ``chosen`` objects of the source onto the target.

    Args:
        image: (H, W, 3) target image; instances: its instance dict (see ``instances.py``).
        source_image: (H', W', 3) source image; source: its instance dict.
        chosen: (n',) bool, the source objects to paste.
        flip: flip the source left-right before pasting.
        min_visible_fraction: target objects left with less than this share of their pixels are
            dropped.
    Returns:
        (image (H, W, 3), instances: the target's remaining objects, then the pasted ones).
    """
    source = select(source, np.asarray(chosen, bool))
    if not len(source["labels"]):
        return image, instances
    height, width = image.shape[:2]
    source_image, source = resize_instances(source_image, source, height, width)
    if flip:
        source_image, source = flip_instances(source_image, source)
    pasted = source["masks"].any(axis=0)  # (H, W) bool
    image = image.copy()
    image[pasted] = source_image[pasted]
    before = instances["masks"].reshape(len(instances["masks"]), height * width).sum(axis=1)
    masks = instances["masks"] * ~pasted  # (n, H, W) uint8: the pasted pixels removed
    after = masks.reshape(len(masks), height * width).sum(axis=1)
    keep = (after > 0) & (after >= min_visible_fraction * before)
    boxes = instances["boxes"].copy()
    touched = keep & (after < before)
    boxes[touched] = boxes_from_masks(masks[touched])
    kept = select(dict(instances, masks=masks, boxes=boxes), keep)
    return image, dict(kept, masks=np.concatenate([kept["masks"], source["masks"]]),
                       boxes=np.concatenate([kept["boxes"], source["boxes"]]).astype(np.float32),
                       labels=np.concatenate([kept["labels"], source["labels"]]))
