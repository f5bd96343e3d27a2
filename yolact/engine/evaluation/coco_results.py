"""COCO results json: detections -> result records, atomic writing, and pycocotools' COCOeval.

A result record is the dict COCO's ``loadRes`` reads: ``image_id`` (int), ``category_id`` (the
json category id, mapped back from our contiguous 0-based label), ``bbox`` [x, y, w, h] float
pixels of the original image, ``score`` float, and (when masks were predicted)
``segmentation``, a compressed RLE ``{"size": [h, w], "counts": str}`` of the full-size mask.

YOLACT++ with mask re-scoring adds ``mask_score`` (the box score times the predicted mask IoU).
As the reference (which writes its bbox and its mask json apart), "bbox" is scored with
``score`` and "segm" with ``mask_score``: :func:`run_coco_eval` hands COCOeval records whose
``score`` is the one of its IoU type.
"""
import contextlib
import copy
import io
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from yolact.utils.atomic import atomic_write

__all__ = [
    "STAT_NAMES",
    "to_numpy",
    "encode_masks",
    "detections_to_coco_results",
    "write_json_atomic",
    "write_results_json",
    "has_ground_truth",
    "run_coco_eval",
    "summary_text",
    "per_class_ap",
    "per_class_table",
]

# Names of COCOeval.stats in order (bbox and segm share them).
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def to_numpy(value) -> np.ndarray:
    """A tensor (any device) or array-like as a numpy array."""
    if torch.is_tensor(value):
        value = value.detach().cpu()
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()  # numpy has no bfloat16
    return np.asarray(value)


def encode_masks(masks) -> List[Dict[str, Any]]:
    """Bool masks (K, h, w) -> K compressed RLEs ``{"size": [h, w], "counts": str}``."""
    masks = to_numpy(masks).astype(np.uint8)
    if masks.shape[0] == 0:
        return []
    # pycocotools wants a Fortran-ordered (h, w, K) uint8 array
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0)))
    return [_rle_with_str_counts(rle) for rle in rles]


def _rle_with_str_counts(rle: Dict[str, Any]) -> Dict[str, Any]:
    counts = rle["counts"]
    return {"size": [int(v) for v in rle["size"]],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def _masks_as_rles(masks) -> Optional[List[Dict[str, Any]]]:
    """The detections' ``masks`` entry (bool (K,h,w), RLE list, or None) as RLEs with str counts."""
    if masks is None:
        return None
    if isinstance(masks, (list, tuple)):
        return [_rle_with_str_counts(rle) for rle in masks]
    return encode_masks(masks)


def detections_to_coco_results(detections: Dict[str, Any], *, image_id: int,
                               category_ids: Optional[Sequence[int]]) -> List[Dict[str, Any]]:
    """One image's detections -> COCO result records (see the module docstring).

    Args:
        detections: ``boxes`` (K, 4) xyxy float pixels, ``labels`` (K,) int 0-based,
            ``scores`` (K,) float, optional ``masks``: bool (K, h, w) or K RLE dicts, optional
            ``mask_scores`` (K,) float (re-scored masks; kept as ``mask_score`` beside masks).
        image_id: the json image id.
        category_ids: label i -> json category id; None means ids 1..C (label + 1).

    Detections whose box has zero width or height are skipped (COCO cannot score them).
    """
    boxes = to_numpy(detections["boxes"]).astype(np.float64).reshape(-1, 4)
    labels = to_numpy(detections["labels"]).astype(np.int64).reshape(-1)
    scores = to_numpy(detections["scores"]).astype(np.float64).reshape(-1)
    rles = _masks_as_rles(detections.get("masks"))
    mask_scores = None
    if rles is not None and detections.get("mask_scores") is not None:
        mask_scores = to_numpy(detections["mask_scores"]).astype(np.float64).reshape(-1)
    records = []
    for index, (box, label, score) in enumerate(zip(boxes, labels, scores)):
        width, height = float(box[2] - box[0]), float(box[3] - box[1])
        if not (width > 0 and height > 0):
            continue
        category_id = int(category_ids[label]) if category_ids is not None else int(label) + 1
        record = {"image_id": int(image_id), "category_id": category_id,
                  "bbox": [float(box[0]), float(box[1]), width, height], "score": float(score)}
        if rles is not None:
            record["segmentation"] = rles[index]
        if mask_scores is not None:
            record["mask_score"] = float(mask_scores[index])
        records.append(record)
    return records


def write_json_atomic(path: Path, content: Any) -> Path:
    """``json.dump`` to a temporary file beside ``path``, then ``os.replace`` (no torn files)."""
    return atomic_write(path, lambda handle: json.dump(content, handle), binary=False)


def write_results_json(path: Path, results: List[Dict[str, Any]]) -> Path:
    """Write COCO result records (a json list, readable by ``COCO.loadRes``); returns ``path``."""
    return write_json_atomic(path, results)


def has_ground_truth(coco_gt: COCO) -> bool:
    """Whether the json holds annotations (False for an image-info-only, test-dev style file)."""
    return len(coco_gt.anns) > 0


def _results_for(results: List[Dict[str, Any]], iou_type: str) -> List[Dict[str, Any]]:
    """Fresh copies holding only what ``iou_type`` scores (``loadRes`` edits its input).

    For "segm" the box is left out so that loadRes takes the area from the mask, not the box
    (otherwise small/medium/large would be decided by box area), and ``score`` is the record's
    ``mask_score`` where it has one (YOLACT++ re-scoring).
    """
    drop = ("segmentation" if iou_type == "bbox" else "bbox", "mask_score")
    copies = []
    for record in results:
        fresh = {key: copy.deepcopy(value) for key, value in record.items() if key not in drop}
        if iou_type == "segm" and "mask_score" in record:
            fresh["score"] = record["mask_score"]
        copies.append(fresh)
    return copies


def _empty_results(coco_gt: COCO) -> COCO:
    coco_dt = COCO()
    coco_dt.dataset = {"images": list(coco_gt.dataset.get("images", [])),
                       "categories": copy.deepcopy(coco_gt.dataset.get("categories", [])), "annotations": []}
    coco_dt.createIndex()
    return coco_dt


def run_coco_eval(coco_gt: COCO, results: List[Dict[str, Any]], iou_type: str,
                  image_ids: Optional[Sequence[int]] = None, *,
                  verbose: bool = False) -> Tuple[List[float], COCOeval]:
    """COCOeval of ``results`` against ``coco_gt`` for ``iou_type`` "bbox" or "segm".

    ``image_ids`` restricts the evaluation (e.g. to the images actually processed); it must
    not be empty. No results at all is allowed: AP is then 0 for classes with ground truth
    (-1 where COCOeval finds no ground truth). ``verbose`` prints the 12-line summary; get it
    as text with :func:`summary_text`. Returns (the 12 ``COCOeval.stats`` floats, the COCOeval).
    """
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    if image_ids is not None and len(image_ids) == 0:
        raise ValueError("image_ids is empty (pycocotools would read that as every image)")
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        coco_dt = coco_gt.loadRes(_results_for(results, iou_type)) if results else _empty_results(coco_gt)
        coco_eval = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        if image_ids is not None:
            coco_eval.params.imgIds = sorted(int(i) for i in image_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
    text = summary_text(coco_eval)
    if verbose:
        print(text)
    return [float(v) for v in coco_eval.stats], coco_eval


def summary_text(coco_eval: COCOeval) -> str:
    """The standard 12-line ``COCOeval.summarize`` output (after ``accumulate``), as a string."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        coco_eval.summarize()
    return buffer.getvalue().rstrip("\n")


def per_class_ap(coco_eval: COCOeval) -> Dict[int, float]:
    """Category id -> AP@[.5:.95] (area all, 100 detections); NaN for a class without GT.

    The standard way: the mean of ``eval["precision"][:, :, k, 0, -1]`` over entries > -1, so
    the mean over classes with ground truth equals the overall AP.
    """
    # (T iou thresholds, R recall points, K classes, A area ranges, M max detections)
    precision = coco_eval.eval["precision"]
    values = {}
    for k, category_id in enumerate(coco_eval.params.catIds):
        per_class = precision[:, :, k, 0, -1]
        valid = per_class[per_class > -1]
        values[int(category_id)] = float(np.mean(valid)) if valid.size else math.nan
    return values


def _gt_counts(coco_gt: COCO, image_ids: Optional[Sequence[int]]) -> Dict[int, int]:
    counts = {int(c): 0 for c in coco_gt.cats}
    for image_id in (coco_gt.imgs if image_ids is None else image_ids):
        for ann in coco_gt.imgToAnns.get(image_id, []):
            if not ann.get("iscrowd", 0):
                counts[int(ann["category_id"])] = counts.get(int(ann["category_id"]), 0) + 1
    return counts


def per_class_table(coco_gt: COCO, *, box_eval: Optional[COCOeval] = None,
                    mask_eval: Optional[COCOeval] = None, image_ids: Optional[Sequence[int]] = None) -> str:
    """A text table: one row per category (name, id, GT count, box AP, mask AP) and the mean.

    APs are AP@[.5:.95] in [0, 1]; "-" marks a class without ground truth in the evaluated
    images (left out of the mean, as COCOeval does).
    """
    evals = (("box AP", box_eval), ("mask AP", mask_eval))
    columns = [(title, per_class_ap(coco_eval)) for title, coco_eval in evals if coco_eval is not None]
    counts = _gt_counts(coco_gt, image_ids)
    names = {int(c): str(cat.get("name", c)) for c, cat in coco_gt.cats.items()}
    width = max([len("class")] + [len(n) for n in names.values()]) + 2
    lines = ["per-class AP @[IoU=0.50:0.95 | area=all | maxDets=100]",
             f"{'class':<{width}}{'id':>6}{'GT':>7}" + "".join(f"{title:>10}" for title, _ in columns)]
    for category_id in sorted(names):
        values = [ap.get(category_id, math.nan) for _, ap in columns]
        cells = ["-" if math.isnan(value) else f"{value:.4f}" for value in values]
        lines.append(f"{names[category_id]:<{width}}{category_id:>6}{counts.get(category_id, 0):>7}"
                     + "".join(f"{cell:>10}" for cell in cells))
    means = []
    for _, ap in columns:
        valid = [v for v in ap.values() if not math.isnan(v)]
        means.append(f"{np.mean(valid):.4f}" if valid else "-")
    with_gt = sum(1 for c in names if counts.get(c, 0) > 0)
    lines.append(f"{f'mean ({with_gt} with GT)':<{width + 13}}" + "".join(f"{m:>10}" for m in means))
    return "\n".join(lines)
