"""Validation during training: the evaluator of eval.py as a hook, plus pictures for TensorBoard."""
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import cv2
import numpy as np
import torch

from yolact.engine.train.hooks import HookBase, interval_due, last_multiple, unwrap
from yolact.utils.image_io import read_image

__all__ = ["ValidationResult", "ValidationHook", "make_evaluate_fn", "make_visualize_fn"]

logger = logging.getLogger("yolact")


@dataclass
class ValidationResult:
    """One validation: COCO metrics ("bbox/AP", "segm/AP", ..., per class "segm/AP/<name>"), the
    COCOeval summary text with the per-class table, (3,H,W) uint8 RGB pictures (ground truth
    beside predictions), and ``details`` for the plots: ``pr_curves`` {iou type: (precision,
    scores) (R,K)}, ``confusion`` (C+1,C+1) counts, ``class_names``."""
    iteration: int
    metrics: Dict[str, float]
    summary: str = ""
    images: List[np.ndarray] = field(default_factory=list)
    details: Dict[str, Any] = field(default_factory=dict)


class ValidationHook(HookBase):
    """Every ``interval`` iterations (and once at the end when ``final``): evaluate and draw.

    The result goes to ``trainer.state.validation``, where later hooks (best checkpoint,
    monitor) and the launcher read it. The final evaluation runs only when training reached
    ``max_iter`` (not after a stop or an error).

    Args:
        evaluate: ``evaluate(model) -> (metrics, summary text[, details])``.
        visualize: ``visualize(model) -> [(3,H,W) uint8 RGB]``.
        model_source: ``model_source(trainer) -> model`` to evaluate (default: the bare trained
            model; the weight average of :class:`~yolact.engine.train.ema.EmaHook` when on).
    """

    def __init__(self, *, interval: int, evaluate: Callable, visualize: Callable[[torch.nn.Module], list],
                 final: bool = True, model_source: Optional[Callable] = None):
        self.interval, self.evaluate, self.visualize, self.final = interval, evaluate, visualize, final
        self.model_source = model_source
        self._last = 0  # the iteration of the last periodic validation (or the start)

    def run(self, trainer) -> ValidationResult:
        """Validate the bare model now; the model is back in training mode afterwards."""
        model = self.model_source(trainer) if self.model_source is not None else unwrap(trainer.model)
        metrics, summary, *details = self.evaluate(model)
        result = ValidationResult(trainer.state.iteration, metrics, summary, self.visualize(model),
                                  details[0] if details else {})
        unwrap(trainer.model).train()
        trainer.state.validation = result
        return result

    def before_train(self, trainer) -> None:
        state = trainer.state
        if state.validation is not None:
            self._last = state.validation.iteration
        else:  # where the interval's multiples put the last one (none yet: 0)
            self._last = last_multiple(state.iteration, self.interval)

    def after_step(self, trainer) -> None:
        """Validate ``interval`` iterations after the last validation (see :func:`interval_due`)."""
        iteration = trainer.state.iteration
        if interval_due(iteration, self._last, self.interval, trainer.max_iter):
            self.run(trainer)
            self._last = iteration

    def after_train(self, trainer) -> None:
        state = trainer.state
        if self.final and not state.crashed and state.stop_reason is None and state.iteration >= trainer.max_iter:
            self.run(trainer)


def make_evaluate_fn(postprocessor, val_loader, val_set, device: torch.device, max_images: Optional[int],
                     gather: bool = False) -> Callable:
    """``evaluate(model) -> (metrics, summary text, details)`` with pycocotools' COCOeval.

    ``metrics``: "bbox/AP", "segm/AP", ... and per-class "bbox/AP/<class name>" (classes with
    ground truth); ``details`` as :class:`ValidationResult` documents. With ``gather`` (torchrun)
    ``val_loader`` is this rank's shard and every rank gets the metrics of all images (see
    :func:`~yolact.engine.evaluation.evaluator.evaluate`).
    """
    from yolact.engine.evaluation.confusion import confusion_matrix
    from yolact.engine.evaluation.evaluator import evaluate as run_evaluation

    names = {int(c): str(name) for c, name in zip(val_set.category_ids, val_set.class_names)}

    def evaluate(model: torch.nn.Module):
        result = run_evaluation(model, postprocessor, val_loader, val_set, device=device, max_images=max_images,
                                progress=False, gather=gather)
        metrics = dict(result.metrics)
        for iou_type, per_class in result.per_class_ap.items():
            metrics.update({f"{iou_type}/AP/{names.get(c, c)}": ap for c, ap in per_class.items() if ap == ap})
        details = {"pr_curves": result.pr_curves, "class_names": list(val_set.class_names)}
        if result.summary_text:
            details["confusion"] = confusion_matrix(val_set.coco, result.results, result.image_ids,
                                                    val_set.category_ids)
        return metrics, result.summary_text + "\n" + result.per_class_table, details

    return evaluate


def make_visualize_fn(postprocessor, val_set, device: torch.device, count: int) -> Callable:
    """``visualize(model) -> [(3,H,W) uint8 RGB]``: the first ``count`` val images, ground truth
    (left) beside the predictions scoring at least 0.3 (right)."""
    from yolact.engine.evaluation.predictor import predict_image
    from yolact.utils.visualize import draw_detections, draw_ground_truth, to_chw_rgb

    image_ids = list(val_set.image_ids[:count])
    paths: List[Path] = []
    for image_id in image_ids:
        paths.append(Path(val_set.image_dir) / val_set.coco.imgs[image_id]["file_name"])

    def visualize(model: torch.nn.Module) -> List[np.ndarray]:
        pictures = []
        for image_id, path in zip(image_ids, paths):
            image_bgr = read_image(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
            if image_bgr is None:
                logger.warning(f"{path}: unreadable, not drawn")
                continue
            detections = predict_image(model, postprocessor, image_bgr, input_size=val_set_input_size(val_set),
                                       device=device)
            drawn = draw_detections(image_bgr, detections, val_set.class_names, score_threshold=0.3)
            truth = draw_ground_truth(image_bgr, val_set.coco.imgToAnns.get(image_id, []), val_set.category_ids,
                                      val_set.class_names)
            gap = np.full((image_bgr.shape[0], 4, 3), 255, dtype=np.uint8)
            pictures.append(to_chw_rgb(np.concatenate([truth, gap, drawn], axis=1)))
        return pictures

    return visualize


def val_set_input_size(val_set) -> int:
    """The network input size the validation transform resizes to."""
    return int(val_set.transform.input_size)
