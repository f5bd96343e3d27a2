"""Checks of one annotation's geometry: its box and its segmentation (polygons or RLE) against the image size.

Each check returns what is usable and a problem line (or None); ``validation.py`` names the
json, image and annotation around it.
"""
import math
from typing import Any, Optional, Tuple

__all__ = ["BOX_TOLERANCE_PX", "check_box", "check_segmentation"]

# A box may stick out of the image by this many pixels (rounding in annotation tools) before
# the clipping is reported as a problem.
BOX_TOLERANCE_PX = 1.0


def check_box(bbox, height, width) -> Tuple[Optional[Tuple[float, float, float, float]], Optional[str]]:
    """-> (clipped xyxy box or None, problem or None)."""
    if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4 and _numbers_are_finite(bbox)):
        return None, "bbox is not 4 finite numbers [x, y, w, h], annotation dropped"
    x, y, box_w, box_h = float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3])
    if box_w <= 0 or box_h <= 0:
        return None, f"zero-area box (w={box_w:g}, h={box_h:g}), annotation dropped"
    x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + box_w, float(width)), min(y + box_h, float(height))
    if x2 <= x1 or y2 <= y1:
        return None, f"box {[x, y, box_w, box_h]} lies outside the {width}x{height} image, annotation dropped"
    overshoot = max(-x, -y, x + box_w - width, y + box_h - height)
    problem = None
    if overshoot > BOX_TOLERANCE_PX:
        problem = (f"box {[x, y, box_w, box_h]} extends {overshoot:g} px outside the {width}x{height} image, "
                   f"clipped")
    return (x1, y1, x2, y2), problem


def _numbers_are_finite(values: list) -> bool:
    """True when ``values`` are all finite numbers (one C-level sum instead of a check per value)."""
    try:
        total = sum(values)
    except TypeError:
        return False
    return isinstance(total, (int, float)) and math.isfinite(total)


def _check_rle(rle: dict, height: int, width: int) -> Optional[str]:
    counts, size = rle.get("counts"), rle.get("size")
    if not isinstance(counts, (list, str)) or not counts:
        return "RLE segmentation without counts, annotation dropped"
    if not isinstance(size, (list, tuple)) or list(size) != [height, width]:
        return f"RLE size {size} differs from the image size [{height}, {width}], annotation dropped"
    # pycocotools decodes uncompressed counts without a bounds check: they must cover the image.
    if isinstance(counts, list) and (not _numbers_are_finite(counts) or sum(counts) != height * width):
        return f"RLE counts do not add up to {height}x{width} pixels, annotation dropped"
    return None


def check_segmentation(segmentation, height, width) -> Tuple[Any, Optional[str], bool]:
    """-> (usable segmentation or None, problem or None, whether it was changed)."""
    if isinstance(segmentation, dict):
        problem = _check_rle(segmentation, height, width)
        return (None if problem else segmentation), problem, False
    if not isinstance(segmentation, list) or not segmentation:
        return None, "empty or missing segmentation, annotation dropped", False
    polygons, num_short, num_malformed = [], 0, 0
    for polygon in segmentation:
        if not isinstance(polygon, list) or len(polygon) % 2 or not _numbers_are_finite(polygon):
            num_malformed += 1
        elif len(polygon) < 6:
            num_short += 1
        else:
            polygons.append(polygon)
    removed = [f"{num_short} polygon(s) with fewer than 3 points"] * bool(num_short) \
        + [f"{num_malformed} malformed polygon(s)"] * bool(num_malformed)
    if not polygons:
        return None, f"no polygon with at least 3 points ({' and '.join(removed)}), annotation dropped", False
    if removed:
        return polygons, f"{' and '.join(removed)} removed", True
    return segmentation, None, False
