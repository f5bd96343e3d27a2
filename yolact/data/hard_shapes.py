"""Harder synthetic COCO sets, in four drawing styles, to develop a training recipe against.

Unlike ``shapes.py`` (one image size, three classes), every image here has its own size and
aspect ratio, a textured and graded background, objects that hide each other (the later one
on top: masks are the visible parts, hidden objects are dropped), and the json mixes what a
real set mixes: RLE and polygon segmentations, crowd regions (``iscrowd`` 1, RLE) of small
dots, about 6% images without objects and non-contiguous category ids. Layout, as
``../shared/peers/ultralytics_shapes.py`` reads it::

    out/train/images/00000.jpg ...   out/train/annotations.json
    out/val/images/00000.jpg ...     out/val/annotations.json

Styles (class sets, sizes and textures differ; develop on two, confirm on the others):

- ``a``: 7 shape kinds (circle, square, triangle, star, cross, ring, ellipse), category ids
  3/7/12/40/41/55/77; gradients with stripes or checks; 1-6 objects of 10-40% of the short
  side; flat or shaded fills; crowds in 20% of images;
- ``b``: colour is part of the class: red or blue circle, square, triangle (6 classes, ids
  2/9/17/33/58/90); smooth colour noise or checks, stronger pixel noise, JPEG 85; 2-8 objects,
  log-uniform 6-30% of the short side (many small ones); striped fills; crowds in 30%;
- ``c``: 8 kinds (semicircle, pentagon, star, ring, triangle, ellipse, cross, square), ids
  1/4/13/21/34/50/67/88; any texture; 1-5 larger objects (12-45%); crowds in 15%;
- ``d``: the set issue 12 describes: 4 kinds (circle, square, triangle, star), ids 3/7/12/40;
  any texture; 1-6 objects of 10-40%; flat, striped or shaded fills; crowds in 20%.

An object is written as a polygon (when it is whole, inside the image and has no hole, with the
style's probability) or as compressed RLE; shapes are filled by pycocotools' own rasteriser,
so both decode to exactly the painted pixels. Objects left with fewer than
``MIN_VISIBLE_PIXELS`` visible pixels are dropped (their few pixels stay unlabelled).

Command line: ``python -m yolact.data.hard_shapes --out data/hard_a --style a --train 400
--val 100 --seed 0``.
"""
import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from yolact.data.hard_shapes_draw import (background, colour_far_from, dot_crowd, fill_object, hue_colour,
                                          paint_noise, rasterize_polygon, shape_outline)
from yolact.errors import YolactError

__all__ = ["Style", "STYLES", "DrawnObject", "draw_image", "object_annotation", "write_split",
           "make_hard_shapes", "main"]

EMPTY_FRACTION = 0.06
MIN_VISIBLE_PIXELS = 16
RED, BLUE = (170.0, 190.0), (100.0, 125.0)  # OpenCV hue ranges (0-180, red wraps)


@dataclass(frozen=True)
class Style:
    """How one family of sets is drawn; ``classes`` are (shape kind, hue range or None)."""

    classes: Tuple[Tuple[str, Optional[Tuple[float, float]]], ...]
    names: Tuple[str, ...]
    category_ids: Tuple[int, ...]
    image_size: Tuple[int, int]  # min, max of width and of height, drawn independently
    num_objects: Tuple[int, int]
    extent: Tuple[float, float]  # object extent as a fraction of the short side
    log_extent: bool  # draw the extent log-uniformly (more small objects)
    textures: Tuple[str, ...]
    texture_amplitude: Tuple[float, float]
    object_textures: Tuple[Optional[str], ...]
    crowd_prob: float
    polygon_prob: float
    min_visible_fraction: float  # placement keeps earlier objects this visible (best effort)
    noise_sigma: Tuple[float, float]
    jpeg_quality: int


def _kinds(*kinds: str):
    return tuple((kind, None) for kind in kinds)


STYLES: Dict[str, Style] = {
    "a": Style(_kinds("circle", "square", "triangle", "star", "cross", "ring", "ellipse"),
               ("circle", "square", "triangle", "star", "cross", "ring", "ellipse"),
               (3, 7, 12, 40, 41, 55, 77),
               (180, 420), (1, 6), (0.10, 0.40), False, ("stripes", "checks"), (8.0, 30.0), (None, "shade"),
               0.20, 0.5, 0.3, (2.0, 6.0), 92),
    "b": Style(tuple((kind, hue) for kind in ("circle", "square", "triangle") for hue in (RED, BLUE)),
               ("red_circle", "blue_circle", "red_square", "blue_square", "red_triangle", "blue_triangle"),
               (2, 9, 17, 33, 58, 90), (200, 400), (2, 8), (0.06, 0.30), True, ("noise", "checks"),
               (15.0, 40.0), ("stripes",), 0.30, 0.5, 0.2, (3.0, 9.0), 85),
    "c": Style(_kinds("semicircle", "pentagon", "star", "ring", "triangle", "ellipse", "cross", "square"),
               ("semicircle", "pentagon", "star", "ring", "triangle", "ellipse", "cross", "square"),
               (1, 4, 13, 21, 34, 50, 67, 88), (180, 420), (1, 5), (0.12, 0.45), False,
               ("stripes", "checks", "noise"), (10.0, 35.0), (None, "stripes", "shade"), 0.15, 0.6, 0.4,
               (2.0, 7.0), 90),
    "d": Style(_kinds("circle", "square", "triangle", "star"), ("circle", "square", "triangle", "star"),
               (3, 7, 12, 40), (180, 420), (1, 6), (0.10, 0.40), False, ("stripes", "checks", "noise"),
               (10.0, 35.0), (None, "stripes", "shade"), 0.20, 0.5, 0.3, (2.0, 7.0), 90),
}


@dataclass
class DrawnObject:
    """One painted object: class index into the style, visible mask (h, w) bool, crowd flag.

    ``polygon`` (k, 2) is set when the object may be written as a polygon (whole, no hole).
    """

    class_index: int
    visible: np.ndarray
    full: np.ndarray
    is_crowd: bool
    polygon: Optional[np.ndarray] = None


def _draw_extent(rng, style: Style, short_side: int) -> float:
    low, high = style.extent
    fraction = np.exp(rng.uniform(np.log(low), np.log(high))) if style.log_extent else rng.uniform(low, high)
    return max(float(fraction * short_side), 8.0)


def _try_shape(rng, style: Style, height: int, width: int) -> DrawnObject:
    class_index = int(rng.integers(len(style.classes)))
    extent = _draw_extent(rng, style, min(height, width))
    # up to a fifth of a shape may stick out of the image (truncated objects)
    left, top = (rng.uniform(-0.2 * extent, size - 0.8 * extent) for size in (width, height))
    outer, hole = shape_outline(style.classes[class_index][0], extent, left, top, rng.uniform(0, 2 * np.pi))
    full = rasterize_polygon(outer, height, width)
    if hole is not None:
        full &= ~rasterize_polygon(hole, height, width)
    inside = outer.min() >= 0 and outer[:, 0].max() <= width - 1 and outer[:, 1].max() <= height - 1
    polygon = outer if hole is None and inside else None
    return DrawnObject(class_index, full.copy(), full, False, polygon)


def _place(rng, style: Style, height: int, width: int, drawn: List[DrawnObject]) -> DrawnObject:
    """A new shape that leaves earlier objects ``min_visible_fraction`` visible, else the 10th try."""
    for _ in range(10):
        candidate = _try_shape(rng, style, height, width)
        if candidate.full.any() and all(
                (obj.visible & ~candidate.full).sum() >= style.min_visible_fraction * obj.full.sum()
                for obj in drawn if not obj.is_crowd):
            break
    return candidate


def _colour(rng, style: Style, class_index: int, under: np.ndarray, others: List[np.ndarray]) -> np.ndarray:
    hue_range = style.classes[class_index][1]
    if hue_range is None:
        return colour_far_from(rng, others + [under])
    options = [hue_colour(rng, hue_range) for _ in range(6)]
    return max(options, key=lambda colour: float(np.linalg.norm(colour - under)))


def draw_image(rng: np.random.Generator, style: Style, *, empty: bool = False):
    """One image of ``style``.

    Returns:
        (image (h, w, 3) uint8 BGR, objects) where objects are the :class:`DrawnObject` kept,
        in drawing order (crowd first), each ``visible`` mask being exactly the pixels where
        that object is on top.
    """
    height, width = (int(rng.integers(style.image_size[0], style.image_size[1] + 1)) for _ in range(2))
    image = background(rng, height, width, style.textures, style.texture_amplitude)
    drawn: List[DrawnObject] = []
    colours: List[np.ndarray] = []
    if not empty and rng.random() < style.crowd_prob:
        dots = dot_crowd(rng, height, width)
        colour = _colour(rng, style, 0, image[dots].mean(0), [])
        fill_object(rng, image, dots, colour, None)
        drawn.append(DrawnObject(0, dots.copy(), dots, True))
    for _ in range(0 if empty else int(rng.integers(style.num_objects[0], style.num_objects[1] + 1))):
        obj = _place(rng, style, height, width, drawn)
        colour = _colour(rng, style, obj.class_index, image[obj.full].mean(0), colours)
        texture = style.object_textures[int(rng.integers(len(style.object_textures)))]
        fill_object(rng, image, obj.full, colour, texture)
        for earlier in drawn:
            earlier.visible &= ~obj.full
        drawn.append(obj)
        colours.append(colour)
    image = paint_noise(rng, image, style.noise_sigma)
    return image, [obj for obj in drawn if obj.visible.sum() >= MIN_VISIBLE_PIXELS]


def object_annotation(rng, style: Style, obj: DrawnObject, ann_id: int, image_id: int) -> Dict:
    """The COCO annotation of a drawn object: a polygon (whole objects, ``polygon_prob``) or RLE."""
    rle = mask_utils.encode(np.asfortranarray(obj.visible.astype(np.uint8)))
    whole = obj.polygon is not None and not obj.is_crowd and bool((obj.visible == obj.full).all())
    if rng.random() < style.polygon_prob and whole:
        segmentation = [[float(v) for v in obj.polygon.reshape(-1)]]
    else:
        segmentation = {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
    return {"id": ann_id, "image_id": image_id, "category_id": style.category_ids[obj.class_index],
            "iscrowd": int(obj.is_crowd), "area": float(mask_utils.area(rle)),
            "bbox": [float(v) for v in mask_utils.toBbox(rle)], "segmentation": segmentation}


def write_split(out: Path, style_name: str, num_images: int, rng: np.random.Generator) -> Path:
    """Write ``num_images`` images of a style to ``out/images`` and ``out/annotations.json``."""
    style = STYLES[style_name]
    (out / "images").mkdir(parents=True, exist_ok=True)
    empty = set(rng.permutation(num_images)[:int(round(EMPTY_FRACTION * num_images))].tolist())
    images, annotations = [], []
    for index in range(num_images):
        image, objects = draw_image(rng, style, empty=index in empty)
        image_id, file_name = 100 + 3 * index, f"{index:05d}.jpg"  # ids need not be 1..N
        cv2.imwrite(str(out / "images" / file_name), image, [cv2.IMWRITE_JPEG_QUALITY, style.jpeg_quality])
        images.append({"id": image_id, "file_name": file_name, "height": image.shape[0],
                       "width": image.shape[1]})
        for obj in objects:
            annotations.append(object_annotation(rng, style, obj, len(annotations) + 1, image_id))
    categories = [{"id": category_id, "name": name, "supercategory": "shape"}
                  for category_id, name in sorted(zip(style.category_ids, style.names))]
    dataset = {"info": {"description": f"YOLACT hard shapes, style {style_name}"}, "licenses": [],
               "images": images, "annotations": annotations, "categories": categories}
    annotation_file = out / "annotations.json"
    annotation_file.write_text(json.dumps(dataset))
    return annotation_file


def make_hard_shapes(out, *, style: str = "a", num_train: int = 400, num_val: int = 100,
                     seed: int = 0) -> Tuple[Path, Path]:
    """Write ``out/train`` and ``out/val`` of ``style``; the same arguments give the same files.

    Returns:
        (train folder, val folder), each holding ``images/`` and ``annotations.json``.
    Raises:
        YolactError: an unknown style or a count under 1.
    """
    if style not in STYLES:
        raise YolactError(f"hard_shapes: unknown style {style!r} (choose from {', '.join(STYLES)})")
    if num_train < 1 or num_val < 1:
        raise YolactError(f"hard_shapes: --train and --val must be at least 1 (got {num_train}, {num_val})")
    out = Path(out)
    style_key = sorted(STYLES).index(style)
    seeds = np.random.SeedSequence([seed, style_key]).spawn(2)
    train_rng, val_rng = (np.random.default_rng(s) for s in seeds)
    write_split(out / "train", style, num_train, train_rng)
    write_split(out / "val", style, num_val, val_rng)
    return out / "train", out / "val"


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m yolact.data.hard_shapes``: write one hard shapes set."""
    from yolact.entry import run_entry_point

    def body(args: List[str]) -> int:
        parser = argparse.ArgumentParser(prog="python -m yolact.data.hard_shapes",
                                         description=__doc__.split("\n")[0])
        parser.add_argument("--out", required=True, help="output folder (gets train/ and val/)")
        parser.add_argument("--style", default="a", help=f"drawing style: {' | '.join(STYLES)} (default: a)")
        parser.add_argument("--train", type=int, default=400, help="training images (default: 400)")
        parser.add_argument("--val", type=int, default=100, help="validation images (default: 100)")
        parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
        options = parser.parse_args(args)
        train_dir, val_dir = make_hard_shapes(options.out, style=options.style, num_train=options.train,
                                              num_val=options.val, seed=options.seed)
        print(f"train: {train_dir}\nval: {val_dir}")
        return 0

    return run_entry_point(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
