"""Validation during training: the evaluator of eval.py, plus pictures for TensorBoard."""
import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional

import cv2
import numpy as np
import torch

__all__ = ["make_evaluate_fn", "make_visualize_fn"]

logger = logging.getLogger("yolact")


def make_evaluate_fn(postprocessor, val_loader, val_set, device: torch.device,
                     max_images: Optional[int]) -> Callable[[torch.nn.Module], Dict[str, float]]:
    """``evaluate(model) -> {"bbox/AP": ..., "segm/AP": ...}`` with pycocotools' COCOeval.

    The returned function keeps the last COCOeval summary text in ``evaluate.last_summary``.
    """
    from yolact.engine.evaluation.evaluator import evaluate as run_evaluation

    def evaluate(model: torch.nn.Module) -> Dict[str, float]:
        result = run_evaluation(model, postprocessor, val_loader, val_set, device=device, max_images=max_images,
                                progress=False)
        evaluate.last_summary = result.summary_text + "\n" + result.per_class_table
        return dict(result.metrics)

    evaluate.last_summary = ""
    return evaluate


def make_visualize_fn(postprocessor, val_set, device: torch.device, count: int) -> Callable:
    """``visualize(model) -> [(3,H,W) uint8 RGB]``: the first ``count`` val images with predictions."""
    from yolact.engine.evaluation.predictor import predict_image
    from yolact.utils.visualize import draw_detections, to_chw_rgb

    paths: List[Path] = []
    for image_id in val_set.image_ids[:count]:
        paths.append(Path(val_set.image_dir) / val_set.coco.imgs[image_id]["file_name"])

    def visualize(model: torch.nn.Module) -> List[np.ndarray]:
        pictures = []
        for path in paths:
            image_bgr = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
            if image_bgr is None:
                logger.warning(f"{path}: unreadable, not drawn")
                continue
            detections = predict_image(model, postprocessor, image_bgr, input_size=val_set_input_size(val_set),
                                       device=device)
            drawn = draw_detections(image_bgr, detections, val_set.class_names, score_threshold=0.3)
            pictures.append(to_chw_rgb(drawn))
        return pictures

    return visualize


def val_set_input_size(val_set) -> int:
    """The network input size the validation transform resizes to."""
    return int(val_set.transform.input_size)
