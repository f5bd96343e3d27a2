"""Helpers on an image and its instance dict (``masks``, ``boxes``, ``labels``, ``crowd_boxes``).

The instance dict is the one ``CocoInstanceDataset.load_instances`` returns (see
``transforms.py``): masks (n, H, W) uint8 0/1, boxes (n, 4) float32 xyxy absolute pixels,
labels (n,) int64, crowd_boxes (m, 4) float32 xyxy absolute pixels. The image is (H, W, 3)
BGR. The mixing augmentations (``mosaic.py``, ``copy_paste.py``) are built from these.
"""
from typing import Dict, Tuple

import cv2
import numpy as np

__all__ = ["Instances", "resize_instances", "flip_instances", "boxes_from_masks", "select", "clip_boxes"]

Instances = Dict[str, np.ndarray]


def resize_instances(image: np.ndarray, instances: Instances, height: int,
                     width: int) -> Tuple[np.ndarray, Instances]:
    """Resize image and masks to (height, width) with cv2 INTER_LINEAR (as the SPEC's resize).

    Boxes and crowd boxes are scaled by (width / W, height / H); the aspect ratio is not kept.
    """
    old_height, old_width = image.shape[:2]
    if (old_height, old_width) == (height, width):
        return image, instances
    scale = np.array([width / old_width, height / old_height] * 2, np.float32)
    masks = np.empty((len(instances["masks"]), height, width), np.uint8)
    for index, mask in enumerate(instances["masks"]):
        masks[index] = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return resized, dict(instances, masks=masks, boxes=(instances["boxes"] * scale).astype(np.float32),
                         crowd_boxes=(instances["crowd_boxes"] * scale).astype(np.float32))


def _flip_boxes(boxes: np.ndarray, width: int) -> np.ndarray:
    return np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)


def flip_instances(image: np.ndarray, instances: Instances) -> Tuple[np.ndarray, Instances]:
    """Left-right flip: x -> W - x for boxes, columns reversed for the image and masks."""
    width = image.shape[1]
    return np.ascontiguousarray(image[:, ::-1]), dict(
        instances, masks=np.ascontiguousarray(instances["masks"][:, :, ::-1]),
        boxes=_flip_boxes(instances["boxes"], width).astype(np.float32),
        crowd_boxes=_flip_boxes(instances["crowd_boxes"], width).astype(np.float32))


def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """(n, H, W) 0/1 -> (n, 4) float32 xyxy tight pixel boxes [x0, y0, x1 + 1, y1 + 1] (COCO's).

    Every mask must have a pixel.
    """
    boxes = np.empty((len(masks), 4), np.float32)
    for index, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        boxes[index] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def select(instances: Instances, keep: np.ndarray) -> Instances:
    """The objects where ``keep`` (n,) bool is True; crowd boxes unchanged."""
    return dict(instances, masks=instances["masks"][keep], boxes=instances["boxes"][keep],
                labels=instances["labels"][keep])


def clip_boxes(boxes: np.ndarray, x0: float, y0: float, x1: float,
               y1: float) -> Tuple[np.ndarray, np.ndarray]:
    """Clip (n, 4) xyxy boxes to the rect; -> (clipped boxes, (n,) bool: positive area left)."""
    clipped = np.clip(boxes, [x0, y0, x0, y0], [x1, y1, x1, y1]).astype(np.float32).reshape(-1, 4)
    return clipped, (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
