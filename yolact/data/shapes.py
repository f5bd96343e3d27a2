"""A synthetic COCO-format dataset of filled shapes, for quick end-to-end runs on a CPU.

Each image has 1-4 filled shapes (circle, square, triangle; rotated; 24-80 px across) in
random colours on a varied background (linear or radial gradients, smooth colour noise,
stripes, pixel noise). The class is decided by the shape alone. Shapes may overlap: later
shapes hide earlier ones, every object keeps at least 60% of its area visible, and its mask is
the visible part. Layout (``root`` is ``data/shapes`` by default)::

    root/train/000001.jpg ...   root/val/000001.jpg ...
    root/annotations/instances_train.json, instances_val.json

The jsons are real COCO instances files (compressed RLE segmentation, iscrowd 0, area, bbox),
so the same code trains on them as on COCO. Generation is seeded and takes a few seconds.

Command line: ``python -m yolact.data.shapes --root data/shapes [--num-train N] [--num-val N]
[--image-size PX] [--seed S] [--force]``; an existing dataset made with the same parameters is
kept unless ``--force``.
"""
import argparse
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from yolact.errors import YolactError

__all__ = ["CLASS_NAMES", "ShapesPaths", "make_shapes_dataset", "main"]

logger = logging.getLogger("yolact")

CLASS_NAMES = ("circle", "square", "triangle")
MIN_VISIBLE_FRACTION = 0.6  # an occluded object keeps at least this share of its area
MIN_COLOUR_DISTANCE = 80.0  # BGR distance of a shape from its background and from other shapes
JPEG_QUALITY = 95


@dataclass(frozen=True)
class ShapesPaths:
    """Where :func:`make_shapes_dataset` put the two splits."""

    train_images: Path
    train_annotations: Path
    val_images: Path
    val_annotations: Path


def _unit_polygon(class_index: int, angle: float) -> np.ndarray:
    """(k, 2) vertices of the shape, rotated by ``angle``, of extent 1 (max of width, height)."""
    if class_index == 0:
        turns = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    else:
        num_sides = 4 if class_index == 1 else 3
        turns = angle + np.pi / 2 + np.arange(num_sides) * 2 * np.pi / num_sides
    points = np.stack([np.cos(turns), np.sin(turns)], axis=1)
    return (points - points.min(0)) / (points.max(0) - points.min(0)).max()


def _shape_mask(polygon: np.ndarray, image_size: int) -> np.ndarray:
    mask = np.zeros((image_size, image_size), np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return mask


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float32 BGR: a gradient or smooth colour noise, maybe stripes."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    kind = rng.integers(3)
    if kind == 2:
        grid = rng.uniform(0, 255, (rng.integers(2, 6), rng.integers(2, 6), 3)).astype(np.float32)
        image = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    else:
        if kind == 0:
            angle = rng.uniform(0, 2 * np.pi)
            ramp = np.cos(angle) * xs + np.sin(angle) * ys
        else:
            ramp = np.hypot(xs - rng.uniform(0, 1), ys - rng.uniform(0, 1))
        ramp = (ramp - ramp.min()) / max(ramp.max() - ramp.min(), 1e-6)
        start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        image = (start + ramp[..., None] * (end - start)).astype(np.float32)
    if rng.integers(2):
        angle, period = rng.uniform(0, np.pi), rng.uniform(0.05, 0.2)
        phase = (np.cos(angle) * xs + np.sin(angle) * ys) / period
        image += (rng.uniform(8, 24) * np.sin(2 * np.pi * phase))[..., None]
    return image


def _pick_colour(rng, avoid: List[np.ndarray]) -> np.ndarray:
    best, best_distance = None, -1.0
    for _ in range(50):
        colour = rng.uniform(0, 255, 3)
        distance = min(float(np.linalg.norm(colour - other)) for other in avoid)
        if distance >= MIN_COLOUR_DISTANCE:
            return colour
        if distance > best_distance:
            best, best_distance = colour, distance
    return best


def _place_object(rng, image_size, min_size, max_size, full_masks, visible_masks) -> Optional[tuple]:
    """-> (class index, mask) of a new shape that leaves every earlier one visible enough."""
    for _ in range(30):
        class_index = int(rng.integers(len(CLASS_NAMES)))
        extent = rng.uniform(min_size, max_size)
        polygon = _unit_polygon(class_index, rng.uniform(0, 2 * np.pi)) * extent
        span = polygon.max(0)
        offset = rng.uniform(1, image_size - 1 - span, 2)
        mask = _shape_mask(polygon + offset, image_size).astype(bool)
        if all((visible & ~mask).sum() >= MIN_VISIBLE_FRACTION * full.sum()
               for full, visible in zip(full_masks, visible_masks)):
            return class_index, mask
    return None


def _make_image(rng, image_size, num_objects_range, min_size, max_size):
    """-> (uint8 BGR image, [(class index, visible bool mask), ...])."""
    image = _background(rng, image_size)
    full_masks, visible_masks, classes, colours = [], [], [], []
    for _ in range(rng.integers(num_objects_range[0], num_objects_range[1] + 1)):
        placed = _place_object(rng, image_size, min_size, max_size, full_masks, visible_masks)
        if placed is None:
            continue
        class_index, mask = placed
        colour = _pick_colour(rng, colours + [image[mask].mean(0)])
        image[mask] = colour
        visible_masks = [visible & ~mask for visible in visible_masks] + [mask]
        full_masks.append(mask)
        classes.append(class_index)
        colours.append(colour)
    image += rng.normal(0, rng.uniform(2, 6), image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), list(zip(classes, visible_masks))


def _annotation(ann_id: int, image_id: int, class_index: int, visible: np.ndarray) -> Dict:
    rle = mask_utils.encode(np.asfortranarray(visible.astype(np.uint8)))
    return {"id": ann_id, "image_id": image_id, "category_id": class_index + 1, "iscrowd": 0,
            "area": float(mask_utils.area(rle)), "bbox": [float(v) for v in mask_utils.toBbox(rle)],
            "segmentation": {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}}


def _write_split(image_dir: Path, annotation_file: Path, num_images: int, rng, params: Dict) -> None:
    image_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        image, objects = _make_image(rng, params["image_size"],
                                     (params["min_objects"], params["max_objects"]),
                                     params["min_size"], params["max_size"])
        file_name = f"{image_id:06d}.jpg"
        cv2.imwrite(str(image_dir / file_name), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        height, width = image.shape[:2]
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        for class_index, visible in objects:
            annotations.append(_annotation(len(annotations) + 1, image_id, class_index, visible))
    categories = [{"id": index + 1, "name": name, "supercategory": "shape"}
                  for index, name in enumerate(CLASS_NAMES)]
    dataset = {"info": {"description": "YOLACT synthetic shapes", "yolact_shapes": params}, "licenses": [],
               "images": images, "annotations": annotations, "categories": categories}
    annotation_file.parent.mkdir(parents=True, exist_ok=True)
    tmp_file = annotation_file.with_name(annotation_file.name + ".tmp")
    tmp_file.write_text(json.dumps(dataset))
    os.replace(tmp_file, annotation_file)  # the json comes last: a half-made split has none


def _made_with(annotation_file: Path) -> Optional[Dict]:
    try:
        return json.loads(annotation_file.read_text())["info"]["yolact_shapes"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _check_options(*, num_train, num_val, image_size, min_objects, max_objects, min_size, max_size) -> None:
    if num_train < 1 or num_val < 1:
        raise YolactError(f"shapes: num_train and num_val must be at least 1 (got {num_train}, {num_val})")
    if image_size < 32:
        raise YolactError(f"shapes: image_size must be at least 32 px (got {image_size})")
    if not 1 <= min_objects <= max_objects:
        raise YolactError(f"shapes: need 1 <= min_objects <= max_objects (got {min_objects}, {max_objects})")
    if not 4 <= min_size <= min(max_size, image_size - 4):
        raise YolactError(f"shapes: need 4 <= min_size <= max_size and min_size <= image_size - 4 "
                          f"(got {min_size}, {max_size}, image size {image_size})")


def make_shapes_dataset(root="data/shapes", *, num_train: int = 2000, num_val: int = 60, image_size: int = 160,
                        seed: int = 0, min_objects: int = 1, max_objects: int = 4, min_size: float = 24,
                        max_size: float = 80, force: bool = False) -> ShapesPaths:
    """Write the shapes dataset under ``root`` (see the module docstring) and return its paths.

    Args:
        num_train, num_val: images per split.
        image_size: images are image_size x image_size pixels.
        seed: the same seed and parameters give the same files.
        min_objects, max_objects: objects per image (fewer when they cannot be placed).
        min_size, max_size: extent of a shape in pixels (larger of its width and height).
        force: rewrite even when the dataset exists with the same parameters.
    Raises:
        YolactError: counts or sizes that cannot make a dataset.
    """
    _check_options(num_train=num_train, num_val=num_val, image_size=image_size, min_objects=min_objects,
                   max_objects=max_objects, min_size=min_size, max_size=max_size)
    root = Path(root)
    paths = ShapesPaths(root / "train", root / "annotations" / "instances_train.json",
                        root / "val", root / "annotations" / "instances_val.json")
    params = {"image_size": image_size, "seed": seed, "min_objects": min_objects, "max_objects": max_objects,
              "min_size": float(min_size), "max_size": float(min(max_size, image_size - 4))}
    train_rng, val_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    splits = ((paths.train_images, paths.train_annotations, num_train, train_rng),
              (paths.val_images, paths.val_annotations, num_val, val_rng))
    for image_dir, annotation_file, num_images, rng in splits:
        split_params = dict(params, num_images=num_images)
        if not force and _made_with(annotation_file) == split_params:
            logger.info("shapes: %s already made, kept", annotation_file)
            continue
        _write_split(image_dir, annotation_file, num_images, rng, split_params)
        logger.info("shapes: wrote %d images to %s and %s", num_images, image_dir, annotation_file)
    return paths


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m yolact.data.shapes``: make the shapes dataset."""
    from yolact.entry import run_entry_point, setup_console_logging

    def body(args: List[str]) -> int:
        parser = argparse.ArgumentParser(prog="python -m yolact.data.shapes",
                                         description=__doc__.split("\n")[0])
        parser.add_argument("--root", default="data/shapes", help="output folder (default: data/shapes)")
        parser.add_argument("--num-train", type=int, default=2000, help="training images (default: 2000)")
        parser.add_argument("--num-val", type=int, default=60, help="validation images (default: 60)")
        parser.add_argument("--image-size", type=int, default=160, help="image side in pixels (default: 160)")
        parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
        parser.add_argument("--force", action="store_true", help="rewrite an existing dataset")
        options = parser.parse_args(args)
        setup_console_logging()
        paths = make_shapes_dataset(options.root, num_train=options.num_train, num_val=options.num_val,
                                    image_size=options.image_size, seed=options.seed, force=options.force)
        for name, path in asdict(paths).items():
            print(f"{name}: {path}")
        return 0

    return run_entry_point(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
