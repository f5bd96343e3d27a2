"""Drawing detections on pictures: translucent masks, box outlines and "name score" labels.

Masks are shown as predicted (no smoothing), so their edge quality is seen honestly.
"""
import colorsys
from typing import Any, Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

__all__ = ["class_color", "select_for_display", "drawing_sizes", "draw_detections", "draw_ground_truth",
           "to_chw_rgb"]

_FONT = cv2.FONT_HERSHEY_DUPLEX
_TEXT_COLOR = (255, 255, 255)
_CROWD_COLOR = (128, 128, 128)


def drawing_sizes(height: int, width: int) -> Tuple[float, int]:
    """(font scale, line width in pixels) for a ``height`` x ``width`` picture.

    Both grow with the longer side: font scale side / 1280, at least 0.3 (labels 8 px tall at
    160 px, 0.5 as before at 640 px, 27 px tall at 1280 px); lines 1 px below 1000 px, 3 px from
    1000 px, 5 px from 2000 px (OpenCV draws odd widths only: see :func:`_cv2_thickness`).
    """
    side = max(int(height), int(width), 1)
    return max(0.3, side / 1280), 2 * (side // 1000) + 1


def _cv2_thickness(line_width: int) -> int:
    """``cv2.rectangle``'s thickness that draws lines ``line_width`` (odd) pixels wide: OpenCV draws
    2 * (t // 2) + 1 pixels for t > 1."""
    return line_width if line_width <= 1 else line_width - 1


def _as_numpy(value) -> np.ndarray:
    if torch.is_tensor(value):
        value = value.detach().cpu()
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()  # numpy has no bfloat16
    return np.asarray(value)


def class_color(label: int) -> Tuple[int, int, int]:
    """A stable, well-spread BGR colour for class ``label`` (0-based).

    Hues step by the golden ratio, so neighbouring labels get distant colours.
    """
    hue = (int(label) * 0.618033988749895) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return int(round(blue * 255)), int(round(green * 255)), int(round(red * 255))


def select_for_display(scores, *, score_threshold: float = 0.0, top_k: Optional[int] = None) -> np.ndarray:
    """Indices of the detections to draw: score >= threshold, best first, at most ``top_k``."""
    scores = _as_numpy(scores).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    order = order[scores[order] >= score_threshold]
    return order if top_k is None else order[:top_k]


def _blend_masks(canvas: np.ndarray, masks: np.ndarray, labels: np.ndarray, order: np.ndarray,
                 alpha: float) -> None:
    """Blend each mask in ``order`` with its class colour, weakest first so the best is on top."""
    for index in order[::-1]:
        mask = masks[index].astype(bool)
        color = np.asarray(class_color(labels[index]), dtype=np.float32)
        blended = (1.0 - alpha) * canvas[mask].astype(np.float32) + alpha * color
        canvas[mask] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def _draw_label(canvas: np.ndarray, text: str, x: int, y: int, color: Tuple[int, int, int],
                font_scale: float) -> None:
    """White ``text`` on a filled ``color`` strip whose bottom-left corner is (x, y)."""
    thickness = max(1, round(font_scale * 1.2))
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, font_scale, thickness)
    top = max(y - text_h - baseline - 2, 0)
    bottom = top + text_h + baseline + 2
    cv2.rectangle(canvas, (x, top), (x + text_w + 2, bottom), color, thickness=-1)
    cv2.putText(canvas, text, (x + 1, bottom - baseline - 1), _FONT, font_scale, _TEXT_COLOR, thickness,
                cv2.LINE_AA)


def draw_detections(image_bgr: np.ndarray, detections: Dict[str, Any], class_names: Sequence[str], *,
                    score_threshold: float = 0.0, top_k: Optional[int] = None, alpha: float = 0.45,
                    draw_boxes: bool = True, draw_text: bool = True, draw_scores: bool = True) -> np.ndarray:
    """A copy of ``image_bgr`` with the detections drawn on it.

    Args:
        image_bgr: uint8 (H, W, 3) BGR picture (left unchanged).
        detections: ``boxes`` (K, 4) xyxy pixels, ``labels`` (K,) 0-based, ``scores`` (K,),
            optional ``masks`` bool (K, H, W), optional ``mask_scores`` (K,) (YOLACT++: then
            they choose, order and label what is drawn, as the reference's); tensors or arrays.
        class_names: label -> name (a label past the end is shown as "class N").
        score_threshold, top_k: draw only detections scoring at least this, at most ``top_k``
            of them (best first).
        alpha: mask opacity; inside a mask a pixel becomes (1 - alpha) * pixel + alpha * colour.
        draw_boxes, draw_text, draw_scores: draw the box outlines, the labels, the score in the label.

    Font size and line width follow the picture's size (:func:`drawing_sizes`).

    Returns uint8 (H, W, 3) BGR.
    """
    canvas = np.array(image_bgr, dtype=np.uint8, copy=True, order="C")  # cv2 draws on C-contiguous arrays only
    scores = _as_numpy(detections.get("mask_scores", detections["scores"])).reshape(-1)
    labels = _as_numpy(detections["labels"]).reshape(-1).astype(np.int64)
    boxes = _as_numpy(detections["boxes"]).reshape(-1, 4)
    order = select_for_display(scores, score_threshold=score_threshold, top_k=top_k)
    if detections.get("masks") is not None and len(order):
        _blend_masks(canvas, _as_numpy(detections["masks"]), labels, order, alpha)
    height, width = canvas.shape[:2]
    font_scale, line_width = drawing_sizes(height, width)
    for index in order[::-1]:
        color = class_color(labels[index])
        x1, y1, x2, y2 = (int(v) for v in np.clip(np.round(boxes[index]), 0, [width - 1, height - 1] * 2))
        if draw_boxes:
            cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness=_cv2_thickness(line_width))
        if draw_text:
            label = int(labels[index])
            name = class_names[label] if 0 <= label < len(class_names) else f"class {label}"
            text = f"{name} {scores[index]:.2f}" if draw_scores else name
            _draw_label(canvas, text, x1, y1, color, font_scale)
    return canvas


def draw_ground_truth(image_bgr: np.ndarray, annotations: Sequence[Dict[str, Any]], category_ids: Sequence[int],
                      class_names: Sequence[str], *, alpha: float = 0.45) -> np.ndarray:
    """A copy of ``image_bgr`` with COCO annotations drawn: masks, boxes and class names.

    ``annotations`` are the image's COCO dicts (``bbox`` xywh, ``category_id``, optional
    ``segmentation`` polygons or RLE, ``iscrowd``); crowd regions are drawn grey, labelled "crowd".
    """
    from pycocotools import mask as mask_utils

    height, width = image_bgr.shape[:2]
    label_of = {int(c): i for i, c in enumerate(category_ids)}
    canvas = np.array(image_bgr, dtype=np.uint8, copy=True, order="C")  # cv2 draws on C-contiguous arrays only
    font_scale, line_width = drawing_sizes(height, width)
    for ann in annotations:
        crowd = bool(ann.get("iscrowd", 0))
        label = label_of.get(int(ann["category_id"]), -1)
        color = _CROWD_COLOR if crowd else class_color(label)
        segmentation = ann.get("segmentation")
        if segmentation:
            rles = (mask_utils.frPyObjects(segmentation, height, width) if isinstance(segmentation, list)
                    else segmentation if isinstance(segmentation.get("counts"), (bytes, str))
                    else mask_utils.frPyObjects(segmentation, height, width))
            mask = mask_utils.decode(mask_utils.merge(rles) if isinstance(rles, list) else rles).astype(bool)
            blended = (1.0 - alpha) * canvas[mask].astype(np.float32) + alpha * np.asarray(color, np.float32)
            canvas[mask] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        x, y, w, h = (int(round(v)) for v in ann["bbox"])
        cv2.rectangle(canvas, (x, y), (x + w, y + h), color, thickness=_cv2_thickness(line_width))
        name = class_names[label] if 0 <= label < len(class_names) else f"class {ann['category_id']}"
        _draw_label(canvas, f"crowd {name}" if crowd else name, x, y, color, font_scale)
    return canvas


def to_chw_rgb(image_bgr: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) BGR -> contiguous uint8 (3, H, W) RGB, as ``SummaryWriter.add_image`` wants."""
    return np.ascontiguousarray(image_bgr[:, :, ::-1].transpose(2, 0, 1))
