"""A detection confusion matrix: class-agnostic box matching, then predicted against true class."""
from typing import Any, Dict, List, Sequence

import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["confusion_matrix"]


def confusion_matrix(coco_gt, results: List[Dict[str, Any]], image_ids: Sequence[int],
                     category_ids: Sequence[int], *, iou_threshold: float = 0.5,
                     score_threshold: float = 0.25) -> np.ndarray:
    """Counts (C+1, C+1): rows the predicted label, columns the true label; index C is background.

    Per image, detections scoring at least ``score_threshold`` are taken best first, each
    matched to the unmatched non-crowd ground-truth box of highest box IoU >= ``iou_threshold``
    whatever its class (so a right box with a wrong class counts as a confusion). Unmatched
    detections are false positives (column C), unmatched ground truth is missed (row C).

    Args:
        results: COCO result records (``image_id``, ``category_id``, ``bbox`` xywh, ``score``).
        category_ids: label i -> json category id.
    """
    label_of = {int(c): i for i, c in enumerate(category_ids)}
    background = len(category_ids)
    matrix = np.zeros((background + 1, background + 1), dtype=np.int64)
    by_image: Dict[int, List[Dict[str, Any]]] = {}
    for record in results:
        if record["score"] >= score_threshold and int(record["category_id"]) in label_of:
            by_image.setdefault(int(record["image_id"]), []).append(record)
    for image_id in image_ids:
        anns = [a for a in coco_gt.imgToAnns.get(int(image_id), [])
                if not a.get("iscrowd", 0) and int(a["category_id"]) in label_of]
        dets = sorted(by_image.get(int(image_id), []), key=lambda r: -r["score"])
        _match_image(matrix, dets, anns, label_of, iou_threshold, background)
    return matrix


def _match_image(matrix: np.ndarray, dets, anns, label_of: Dict[int, int], iou_threshold: float,
                 background: int) -> None:
    gt_labels = [label_of[int(a["category_id"])] for a in anns]
    if dets and anns:
        # (D, G) box IoU, pycocotools' xywh convention
        ious = mask_utils.iou([d["bbox"] for d in dets], [a["bbox"] for a in anns], [0] * len(anns))
    else:
        ious = np.zeros((len(dets), len(anns)))
    matched = np.zeros(len(anns), dtype=bool)
    for d, det in enumerate(dets):
        pred = label_of[int(det["category_id"])]
        candidates = np.where(matched, -1.0, np.asarray(ious[d]).reshape(-1)) if len(anns) else np.zeros(0)
        best = int(np.argmax(candidates)) if len(candidates) else -1
        if best >= 0 and candidates[best] >= iou_threshold:
            matched[best] = True
            matrix[pred, gt_labels[best]] += 1
        else:
            matrix[pred, background] += 1
    for g, label in enumerate(gt_labels):
        if not matched[g]:
            matrix[background, label] += 1
