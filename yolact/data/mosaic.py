"""Mosaic: four images around a random centre, as one training image (YOLOv4, Ultralytics).

Each of the four images is resized to tile x tile (no aspect preservation, as the SPEC's
resize) and placed with its inner corner at the centre (cx, cy) of a tile x tile canvas:
part 0 ends at the centre from the top left, part 1 from the top right, part 2 from the bottom
left, part 3 from the bottom right. Each part shows only its quadrant: objects keep the mask
pixels inside it and their boxes are clipped to it; an object keeping less than
``min_visible_fraction`` of its (resized) pixels is dropped, as is a crowd box without area.
With tile = the network input, objects keep the scale of a plain resize.
"""
from typing import List, Sequence, Tuple

import numpy as np

from yolact.data.instances import Instances, clip_boxes, resize_instances, select

__all__ = ["mosaic", "quadrants"]


def quadrants(centre: Tuple[int, int], tile: int) -> List[Tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of the canvas region of parts 0-3 (top left, top right, bottom left, bottom right)."""
    cx, cy = centre
    return [(0, 0, cx, cy), (cx, 0, tile, cy), (0, cy, cx, tile), (cx, cy, tile, tile)]


def _part(image, instances: Instances, region, offset, tile: int, min_visible_fraction: float):
    """One resized part cut to its region: -> (pixels of the region, instances on the canvas)."""
    x0, y0, x1, y1 = region
    left, top = offset  # where the part's top-left corner lies on the canvas
    pixels = image[y0 - top:y1 - top, x0 - left:x1 - left]
    masks = np.zeros((len(instances["masks"]), tile, tile), np.uint8)
    masks[:, y0:y1, x0:x1] = instances["masks"][:, y0 - top:y1 - top, x0 - left:x1 - left]
    shift = np.array([left, top, left, top], np.float32)
    boxes, keep = clip_boxes(instances["boxes"] + shift, x0, y0, x1, y1)
    visible = masks.reshape(len(masks), tile * tile).sum(axis=1)
    total = instances["masks"].reshape(len(masks), tile * tile).sum(axis=1)
    keep &= (visible > 0) & (visible >= min_visible_fraction * total)
    crowd_boxes, keep_crowd = clip_boxes(instances["crowd_boxes"] + shift, x0, y0, x1, y1)
    placed = select(dict(instances, masks=masks, boxes=boxes), keep)
    return pixels, dict(placed, crowd_boxes=crowd_boxes[keep_crowd])


def mosaic(parts: Sequence[Tuple[np.ndarray, Instances]], centre: Tuple[int, int], tile: int, *,
           min_visible_fraction: float = 0.1) -> Tuple[np.ndarray, Instances]:
    """Four (image (H_k, W_k, 3), instances) -> one (tile, tile, 3) image and its instances.

    Args:
        parts: four images with their instance dicts (see ``instances.py``), in the order top
            left, top right, bottom left, bottom right.
        centre: (cx, cy) in [0, tile], where the four parts meet.
        tile: side of each resized part and of the output.
        min_visible_fraction: objects showing less than this share of their pixels are dropped.
    Returns:
        (image (tile, tile, 3) of the parts' dtype, instances with the objects of the four parts
        in that order: masks (n, tile, tile), boxes and crowd boxes in canvas pixels).
    """
    cx, cy = centre
    offsets = [(cx - tile, cy - tile), (cx, cy - tile), (cx - tile, cy), (cx, cy)]
    canvas = np.zeros((tile, tile, 3), parts[0][0].dtype)
    placed = []
    for (image, instances), region, offset in zip(parts, quadrants(centre, tile), offsets):
        image, instances = resize_instances(image, instances, tile, tile)
        pixels, on_canvas = _part(image, instances, region, offset, tile, min_visible_fraction)
        canvas[region[1]:region[3], region[0]:region[2]] = pixels
        placed.append(on_canvas)
    merged = {key: np.concatenate([instances[key] for instances in placed])
              for key in ("masks", "boxes", "labels", "crowd_boxes")}
    return canvas, merged
