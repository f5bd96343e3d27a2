"""COCO box and mask AP of a model on a dataset, with pycocotools' COCOeval.

The model runs in eval mode without gradients; its raw outputs go through the
post-processor at each image's original size with RLE masks, so memory stays bounded by one
batch whatever the image size. Scores are those of pycocotools (not the reference's own
mAP code, SPEC §9).
"""
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

import torch
import torch.distributed as dist

from yolact.engine.evaluation.coco_results import (
    STAT_NAMES, detections_to_coco_results, has_ground_truth, per_class_ap, per_class_table, run_coco_eval,
    summary_text,
)
from yolact.engine.evaluation.inference import predict_batch
from yolact.errors import YolactError
from yolact.utils.distributed import all_gather_objects, broadcast_object, is_distributed
from yolact.utils.progress import progress_bar

__all__ = ["EvalResult", "evaluate"]

logger = logging.getLogger("yolact")


@dataclass
class EvalResult:
    """What :func:`evaluate` found.

    ``box_stats``/``mask_stats`` are the 12 ``COCOeval.stats`` (AP, AP50, AP75, APs, APm,
    APl, AR1, AR10, AR100, ARs, ARm, ARl) in [0, 1], -1 where COCOeval has no ground truth;
    None (and empty ``summary_text``, ``per_class_table``, ``metrics``) when the dataset has no
    annotations. ``metrics`` has flat names: "bbox/AP", "bbox/AP50", ..., "segm/ARl".
    """

    results: List[Dict[str, Any]]          # COCO result records of every processed image
    image_ids: List[int]                   # the processed images, in loader order
    box_stats: Optional[List[float]] = None
    mask_stats: Optional[List[float]] = None
    summary_text: str = ""
    per_class_table: str = ""
    metrics: Dict[str, float] = field(default_factory=dict)
    # per iou type ("bbox", "segm"): category id -> AP@[.5:.95] (NaN without ground truth)
    per_class_ap: Dict[str, Dict[int, float]] = field(default_factory=dict)
    # per iou type: (precision, scores), each (R=101 recall points, K classes) at IoU 0.5, area all,
    # 100 detections, from COCOeval.eval (-1 for a class without ground truth); for PR/F1 curves
    pr_curves: Dict[str, Tuple[Any, Any]] = field(default_factory=dict)


def _predict_dataset(model, postprocessor, data_loader: Iterable, dataset, *, device, max_images, amp,
                     progress) -> Tuple[List[Dict[str, Any]], List[int]]:
    total = len(dataset) if max_images is None else min(len(dataset), max_images)
    results: List[Dict[str, Any]] = []
    image_ids: List[int] = []
    if max_images is not None and max_images <= 0:
        return results, image_ids
    seen = set()
    with progress_bar(total=total, desc="eval", unit="img", disable=not progress) as bar:
        for images, targets in data_loader:
            if max_images is not None:  # the last batch may hold more than are left
                remaining = max_images - len(image_ids)
                images, targets = images[:remaining], list(targets)[:remaining]
            sizes = [tuple(int(v) for v in target["orig_size"]) for target in targets]
            detections_per_image = predict_batch(model, postprocessor, images, sizes, device=device,
                                                 mask_format="rle", amp=amp)
            for detections, target in zip(detections_per_image, targets):
                image_id = int(target["image_id"])
                if image_id in seen:
                    # the dataset hands another image in place of an undecodable one: score each once
                    logger.warning(f"image {image_id} came twice from the loader; its second pass is ignored")
                    continue
                seen.add(image_id)
                results.extend(detections_to_coco_results(detections, image_id=image_id,
                                                          category_ids=dataset.category_ids))
                image_ids.append(image_id)
            bar.update(len(targets))
            if max_images is not None and len(image_ids) >= max_images:
                break
    return results, image_ids


def evaluate(model: torch.nn.Module, postprocessor, data_loader: Iterable, dataset, *, device: torch.device,
             max_images: Optional[int] = None, amp: str = "off",
             progress: bool = True, gather: bool = False) -> EvalResult:
    """Run ``model`` over ``data_loader`` and score the detections with COCOeval.

    Args:
        model: ``model(images (N,3,S,S) float) -> outputs`` for ``postprocessor``.
        postprocessor: ``postprocessor(outputs, image_sizes, mask_format="rle") -> list[dict]``.
        data_loader: yields (images (B,3,S,S) float, targets) with ``image_id`` and
            ``orig_size`` (h, w) in each target, in any order (no shuffling needed).
        dataset: has ``coco`` (pycocotools COCO of the ground truth), ``category_ids``
            (label -> json category id) and ``len()``.
        device: where the model lives; ``amp`` ("off", "bf16", "fp16") autocasts the network.
        max_images: stop after this many images; only those images are scored.
        gather: under torchrun, ``data_loader`` yields this rank's shard (images ``rank::world_size``
            of the dataset order, :func:`~yolact.data.loader.make_val_loader`); the detections of
            every rank are gathered in dataset order, rank 0 scores them and every rank returns
            the same result, equal to one process's. A collective: every rank calls it.

    The model's training mode is restored afterwards. A dataset without annotations
    (image-info json) gives the results only, without metrics.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            results, image_ids = _predict_dataset(model, postprocessor, data_loader, dataset, device=device,
                                                  max_images=max_images, amp=amp,
                                                  progress=progress)
    finally:
        model.train(was_training)
    if gather and is_distributed():
        results, image_ids = _gather_in_dataset_order(results, image_ids)
    if not image_ids:
        raise YolactError("evaluation processed no image (empty dataset or max_images=0)")
    evaluation = EvalResult(results=results, image_ids=image_ids)
    if not has_ground_truth(dataset.coco):
        logger.info(f"no ground truth in the annotation file: {len(results)} detections on "
                    f"{len(image_ids)} images, no metrics")
        return evaluation
    if gather and is_distributed():
        scored = broadcast_object(_scored_fields(evaluation, dataset.coco) if dist.get_rank() == 0 else None)
        evaluation.__dict__.update(scored)
        return evaluation
    _score(evaluation, dataset.coco)
    return evaluation


def _gather_in_dataset_order(results: List[Dict[str, Any]], image_ids: List[int]):
    """Every rank's (results, image ids) merged as one process would have produced them: image p
    of the dataset order came from rank ``p % world_size`` as its image ``p // world_size``."""
    shards = all_gather_objects((image_ids, results))
    per_image: Dict[int, List[Dict[str, Any]]] = {}
    for shard_ids, shard_results in shards:
        for image_id in shard_ids:
            per_image.setdefault(image_id, [])
        for record in shard_results:
            per_image[record["image_id"]].append(record)
    merged_ids: List[int] = []
    seen = set()
    longest = max(len(shard_ids) for shard_ids, _ in shards)
    for position in range(longest):
        for shard_ids, _ in shards:
            if position < len(shard_ids) and shard_ids[position] not in seen:
                seen.add(shard_ids[position])
                merged_ids.append(shard_ids[position])
    return [record for image_id in merged_ids for record in per_image[image_id]], merged_ids


def _scored_fields(evaluation: EvalResult, coco_gt) -> Dict[str, Any]:
    """Rank 0's scores of the gathered detections, for :func:`broadcast_object`."""
    _score(evaluation, coco_gt)
    names = ("box_stats", "mask_stats", "summary_text", "per_class_table", "metrics")
    return {name: getattr(evaluation, name) for name in names}


def _score(evaluation: EvalResult, coco_gt) -> None:
    """Fill the stats, metrics and texts of ``evaluation`` (which has results and image ids)."""
    results, image_ids = evaluation.results, evaluation.image_ids
    header = f"COCO evaluation on {len(image_ids)} images, {len(results)} detections"
    if not results:
        header += ("\nno detections at all: AP is 0 for every class with ground truth "
                   "(-1 where there is no ground truth)")
    texts, evals = [header], {}
    with_masks = not results or all("segmentation" in record for record in results)
    for iou_type in ("bbox", "segm") if with_masks else ("bbox",):
        stats, coco_eval = run_coco_eval(coco_gt, results, iou_type, image_ids=image_ids)
        evals[iou_type] = coco_eval
        evaluation.per_class_ap[iou_type] = per_class_ap(coco_eval)
        evaluation.pr_curves[iou_type] = (coco_eval.eval["precision"][0, :, :, 0, -1].copy(),
                                          coco_eval.eval["scores"][0, :, :, 0, -1].copy())
        evaluation.metrics.update({f"{iou_type}/{name}": value for name, value in zip(STAT_NAMES, stats)})
        texts.append(f"{iou_type} ({'box' if iou_type == 'bbox' else 'mask'} AP):\n{summary_text(coco_eval)}")
    evaluation.box_stats = [float(v) for v in evals["bbox"].stats]
    evaluation.mask_stats = [float(v) for v in evals["segm"].stats] if "segm" in evals else None
    evaluation.summary_text = "\n".join(texts)
    evaluation.per_class_table = per_class_table(coco_gt, box_eval=evals["bbox"], mask_eval=evals.get("segm"),
                                                 image_ids=image_ids)
