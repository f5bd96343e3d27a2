"""Class names for a checkpoint that carries none: the config's dataset json, or COCO's 80 names.

Our checkpoints store ``class_names`` and ``category_ids``; a bare state_dict or one of the
reference's released checkpoints does not. The reference's 80-class checkpoints were trained on
COCO 2017, whose category ids skip numbers (1..90 with gaps), so labels map to the ids below.
"""
import json
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

__all__ = ["COCO_CLASS_NAMES", "COCO_CATEGORY_IDS", "names_from_annotations", "resolve_class_names"]

COCO_CLASS_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)
COCO_CATEGORY_IDS = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33, 34,
    35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
    64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
)


def names_from_annotations(path: Path) -> Optional[Tuple[List[str], List[int]]]:
    """(names, ids) of a COCO json's categories sorted by id (our label order); None when unreadable."""
    try:
        with open(path) as handle:
            categories = json.load(handle).get("categories") or []
        categories = sorted(categories, key=lambda category: int(category["id"]))
        return [str(c["name"]) for c in categories], [int(c["id"]) for c in categories]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def resolve_class_names(num_classes: int, *, stored_names: Optional[Sequence[str]] = None,
                        stored_ids: Optional[Sequence[int]] = None,
                        annotation_files: Sequence[str] = ()) -> Tuple[List[str], Optional[List[int]], str]:
    """(names, category ids or None, where they came from) for a model of ``num_classes`` classes.

    In order: the checkpoint's own names; the first of ``annotation_files`` (the config's val
    then train json) that exists with ``num_classes`` categories; COCO's names and ids for 80
    classes; else ``class_<i>``.
    """
    if stored_names and len(stored_names) == num_classes:
        return list(stored_names), list(stored_ids) if stored_ids else None, "checkpoint"
    for path in annotation_files:
        found = names_from_annotations(Path(path)) if path and Path(path).is_file() else None
        if found is not None and len(found[0]) == num_classes:
            return found[0], found[1], str(path)
    if num_classes == len(COCO_CLASS_NAMES):
        return list(COCO_CLASS_NAMES), list(COCO_CATEGORY_IDS), "COCO"
    return [f"class_{i}" for i in range(num_classes)], None, "none"
