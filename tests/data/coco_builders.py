"""Builders of small COCO files for the data tests (tests/data)."""
import json

import cv2
import numpy as np
from pycocotools import mask as mask_utils


def write_image(path, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A random PNG (lossless, so pixel values can be compared exactly); returns the BGR array."""
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    cv2.imwrite(str(path), image)
    return image


def rect_rle(height: int, width: int, x0: int, y0: int, x1: int, y1: int, compressed: bool):
    """RLE of the rectangle [y0:y1, x0:x1] (column-major counts, as COCO)."""
    mask = np.zeros((height, width), np.uint8)
    mask[y0:y1, x0:x1] = 1
    flat = mask.flatten(order="F")
    if compressed:
        rle = mask_utils.encode(np.asfortranarray(mask))
        return {"size": [height, width], "counts": rle["counts"].decode("ascii")}
    boundaries = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(boundaries).tolist()
    if flat[0] == 1:  # counts start with a run of zeros
        counts = [0] + counts
    return {"size": [height, width], "counts": counts}


def build_coco_folder(root, images, annotations, categories, files=None, json_text=None):
    """Write images and a json under ``root``; -> (image_dir, json_path).

    ``images`` are (id, file_name, height, width); every file is written as a random PNG unless
    ``files`` maps a file name to bytes (corrupt files) or to None (missing file).
    """
    image_dir = root / "images"
    image_dir.mkdir(exist_ok=True)
    files = files or {}
    for image_id, file_name, height, width in images:
        if file_name in files:
            if files[file_name] is not None:
                (image_dir / file_name).write_bytes(files[file_name])
        else:
            write_image(image_dir / file_name, height, width, seed=image_id)
    data = {"images": [{"id": i, "file_name": f, "height": h, "width": w} for i, f, h, w in images],
            "annotations": annotations, "categories": categories}
    json_path = root / "instances.json"
    json_path.write_text(json_text if json_text is not None else json.dumps(data))
    return image_dir, json_path
