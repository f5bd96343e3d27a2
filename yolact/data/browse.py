"""Look at a dataset's ground truth: each image drawn with its masks, boxes, crowd regions and class
names, as stored in the json or as the training augmentation hands it to the network."""
import logging
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch

from yolact.data.transforms import PIXEL_MEAN_BGR, PIXEL_STD_BGR
from yolact.utils.atomic import atomic_write
from yolact.utils.image_io import read_image
from yolact.utils.visualize import draw_detections, draw_ground_truth

__all__ = ["denormalize", "draw_sample", "browse_dataset"]

logger = logging.getLogger("yolact")


def denormalize(image: torch.Tensor) -> np.ndarray:
    """A normalised RGB FloatTensor [3, S, S] -> uint8 (S, S, 3) BGR (the inverse of ``normalize_to_tensor``)."""
    rgb = image.detach().cpu().float().numpy().transpose(1, 2, 0)
    bgr = rgb[:, :, ::-1] * np.float32(PIXEL_STD_BGR) + np.float32(PIXEL_MEAN_BGR)
    return np.ascontiguousarray(np.clip(np.rint(bgr), 0, 255).astype(np.uint8))


def draw_sample(image: torch.Tensor, target, class_names) -> np.ndarray:
    """A dataset sample ``(image, target)`` as the network sees it, objects and crowd boxes drawn."""
    canvas = denormalize(image)
    size = np.array(canvas.shape[1::-1] * 2, dtype=np.float32)  # relative xyxy -> pixels
    boxes = target["boxes"].numpy().reshape(-1, 4) * size
    shown = {"boxes": boxes, "labels": target["labels"].numpy(), "scores": np.ones(len(boxes), np.float32),
             "masks": target["masks"].numpy().astype(bool)}
    canvas = draw_detections(canvas, shown, class_names, draw_scores=False)
    crowd = [{"bbox": [x1, y1, x2 - x1, y2 - y1], "category_id": -1, "iscrowd": 1}
             for x1, y1, x2, y2 in target.get("crowd_boxes", torch.zeros(0, 4)).numpy().reshape(-1, 4) * size]
    return draw_ground_truth(canvas, crowd, [], class_names) if crowd else canvas


def browse_dataset(dataset, out_dir: Path, *, count: Optional[int] = None, augmented: bool = False,
                   start: int = 0) -> int:
    """Draw images ``start ..`` (at most ``count``) of a ``CocoInstanceDataset`` to ``out_dir``.

    Without ``augmented`` the original picture is drawn with its json annotations (crowd
    regions grey, named "crowd"); with it, ``dataset[i]`` (its transform: the training
    augmentation when the dataset was built with it) is drawn. Files are ``<image id>.jpg``.
    Returns the number of pictures written.
    """
    out_dir = Path(out_dir)
    stop = len(dataset.image_ids) if count is None else min(len(dataset.image_ids), start + count)
    written = 0
    for index in range(start, stop):
        image_id = dataset.image_ids[index]
        if augmented:
            image, target = dataset[index]
            picture = draw_sample(image, target, dataset.class_names)
            image_id = target["image_id"]
        else:
            info = dataset.coco.imgs[image_id]
            image_bgr = read_image(Path(dataset.image_dir) / info["file_name"])
            if image_bgr is None:
                logger.warning(f"{info['file_name']}: cannot read this image, skipped")
                continue
            picture = draw_ground_truth(image_bgr, dataset.coco.imgToAnns.get(image_id, []), dataset.category_ids,
                                        dataset.class_names)
        ok, encoded = cv2.imencode(".jpg", picture)
        if ok:
            atomic_write(out_dir / f"{image_id}.jpg", lambda handle, data=encoded: handle.write(data.tobytes()))
            written += 1
    return written
