"""Geometric augmentation steps of SPEC §8 on an image and its instances, kept consistent.

Every step takes a :class:`Sample` and a ``numpy.random.Generator`` and returns a new
:class:`Sample` (inputs are never modified). Boxes are xyxy in absolute pixels of the canvas
throughout; masks are (n, h, w) uint8 0/1 over the picture.

Expand is lazy: it only records where the picture sits on a larger mean-filled canvas. The
canvas is materialised by the next step that needs its pixels, and the crop materialises only
its window, so a 4x expansion of a 640x480 image (a 59 MB float canvas) is never built unless
the crop keeps all of it. The pixels are those of the reference's eager version.
"""
from dataclasses import dataclass, replace
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = ["Sample", "expand", "random_sample_crop", "mirror", "resize", "discard_small_boxes"]

# Crop modes of the reference (SPEC §8): None keeps the image; the others are minimum IoUs,
# which only matter with the IoU constraint on (-inf: no constraint in any case).
CROP_MODES = (None, 0.1, 0.3, 0.7, 0.9, float("-inf"))


@dataclass(frozen=True)
class Sample:
    """A picture on a canvas, with its instances.

    Attributes:
        image: (h, w, 3) float32 BGR, the picture.
        masks: (n, h, w) uint8 0/1, one mask per non-crowd object, over the picture.
        boxes: (n, 4) float32 xyxy, absolute canvas pixels.
        labels: (n,) int64 contiguous class indices.
        crowd_boxes: (m, 4) float32 xyxy, absolute canvas pixels.
        canvas_size: (height, width) of the canvas; the picture's size unless expanded.
        offset: (left, top) of the picture on the canvas.
        fill_bgr: colour of the canvas outside the picture.
    """

    image: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    crowd_boxes: np.ndarray
    canvas_size: Tuple[int, int]
    offset: Tuple[int, int] = (0, 0)
    fill_bgr: Tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def from_arrays(cls, image, masks, boxes, labels, crowd_boxes) -> "Sample":
        """A sample whose canvas is the picture itself."""
        return cls(image, masks, boxes, labels, crowd_boxes, canvas_size=image.shape[:2])

    @property
    def num_instances(self) -> int:
        return len(self.labels)

    @property
    def is_lazy(self) -> bool:
        """True when the canvas is larger than the picture (after expand)."""
        return self.canvas_size != self.image.shape[:2]

    def window(self, x0: int, y0: int, x1: int, y1: int) -> Tuple[np.ndarray, np.ndarray]:
        """Canvas pixels and masks of the window [y0:y1, x0:x1] (a view when inside the picture).

        Returns:
            image (y1-y0, x1-x0, 3) float32 and masks (n, y1-y0, x1-x0) uint8.
        """
        (left, top), (pic_h, pic_w) = self.offset, self.image.shape[:2]
        px0, py0 = max(x0 - left, 0), max(y0 - top, 0)  # the window inside the picture
        px1, py1 = min(x1 - left, pic_w), min(y1 - top, pic_h)
        out_h, out_w, num = y1 - y0, x1 - x0, len(self.masks)
        if px0 >= px1 or py0 >= py1:  # only canvas fill in the window
            image = np.empty((out_h, out_w, 3), np.float32)
            image[:] = self.fill_bgr
            return image, np.zeros((num, out_h, out_w), np.uint8)
        pad_top, pad_left = top + py0 - y0, left + px0 - x0
        pad_bottom, pad_right = y1 - (top + py1), x1 - (left + px1)
        image, masks = self.image[py0:py1, px0:px1], self.masks[:, py0:py1, px0:px1]
        if pad_top or pad_left or pad_bottom or pad_right:
            image = cv2.copyMakeBorder(image, pad_top, pad_bottom, pad_left, pad_right,
                                       cv2.BORDER_CONSTANT, value=self.fill_bgr)
            padded = np.zeros((num, out_h, out_w), np.uint8)
            padded[:, pad_top:pad_top + py1 - py0, pad_left:pad_left + px1 - px0] = masks
            masks = padded
        return image, masks

    def materialize(self) -> "Sample":
        """The same sample with the canvas built (picture == canvas)."""
        if not self.is_lazy and self.offset == (0, 0):
            return self
        height, width = self.canvas_size
        image, masks = self.window(0, 0, width, height)
        return replace(self, image=image, masks=masks, offset=(0, 0))


def _shift(boxes: np.ndarray, dx: float, dy: float) -> np.ndarray:
    return boxes + np.array([dx, dy, dx, dy], np.float32)


def expand(sample: Sample, rng: np.random.Generator, *, fill_bgr: Sequence[float],
           max_ratio: float = 4.0) -> Sample:
    """With p = 0.5, zoom out: the canvas becomes int(H*r) x int(W*r), r ~ U(1, max_ratio).

    The picture is placed at (int(left), int(top)) with left ~ U(0, W*r - W) and
    top ~ U(0, H*r - H); the rest of the canvas has the mean colour ``fill_bgr``.
    """
    if rng.integers(2):  # the reference skips when randint(2) is 1
        return sample
    sample = sample.materialize()
    height, width = sample.canvas_size
    ratio = rng.uniform(1.0, max_ratio)
    left, top = int(rng.uniform(0.0, width * ratio - width)), int(rng.uniform(0.0, height * ratio - height))
    return replace(sample, boxes=_shift(sample.boxes, left, top),
                   crowd_boxes=_shift(sample.crowd_boxes, left, top),
                   canvas_size=(int(height * ratio), int(width * ratio)), offset=(left, top),
                   fill_bgr=tuple(float(v) for v in fill_bgr))


def _max_iou(boxes: np.ndarray, rect: np.ndarray) -> float:
    top_left, bottom_right = np.maximum(boxes[:, :2], rect[:2]), np.minimum(boxes[:, 2:], rect[2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1) + np.prod(rect[2:] - rect[:2]) - inter
    return float((inter / areas).max()) if len(boxes) else 0.0


def _crop_offset(rng: np.random.Generator, free: float, quirk: bool) -> float:
    if quirk:
        # Reference quirk kept on purpose (SPEC §8): numpy's uniform(W - w) reads W - w as
        # `low` with `high` = 1.0 and returns low + (high - low) * U[0, 1), so the offset lies
        # in (1, W - w] rather than [0, W - w). Written out because Generator.uniform leaves
        # low > high undefined.
        return free + (1.0 - free) * rng.random()
    return free * rng.random()


def _centers_inside(boxes: np.ndarray, rect: np.ndarray) -> np.ndarray:
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    return np.all((centers > rect[:2]) & (centers < rect[2:]), axis=1)


def _clip_to_rect(boxes: np.ndarray, rect: np.ndarray) -> np.ndarray:
    clipped = np.concatenate([np.maximum(boxes[:, :2], rect[:2]), np.minimum(boxes[:, 2:], rect[2:])], axis=1)
    return (clipped - np.tile(rect[:2], 2)).astype(np.float32)


def _draw_crop(sample: Sample, rng, min_iou, *, offset_quirk, iou_constraint) -> Optional[np.ndarray]:
    """One trial of the reference: a random rect, or None when it is rejected."""
    height, width = sample.canvas_size
    crop_w, crop_h = rng.uniform(0.3 * width, width), rng.uniform(0.3 * height, height)
    if crop_h / crop_w < 0.5 or crop_h / crop_w > 2:
        return None
    left = _crop_offset(rng, width - crop_w, offset_quirk)
    top = _crop_offset(rng, height - crop_h, offset_quirk)
    rect = np.array([int(left), int(top), int(left + crop_w), int(top + crop_h)], np.float32)
    # The reference's IoU test can never fail (SPEC §8, "fixing it halved mAP"); the option
    # applies the fix that was tried: some object must overlap the crop by min_iou.
    if iou_constraint and _max_iou(sample.boxes, rect) < min_iou:
        return None
    if sample.num_instances and not _centers_inside(sample.boxes, rect).any():
        return None
    return rect


def random_sample_crop(sample: Sample, rng: np.random.Generator, *, offset_quirk: bool = True,
                       iou_constraint: bool = False, max_trials: int = 50) -> Sample:
    """The reference's RandomSampleCrop (SPEC §8).

    A mode is drawn among 6 (one keeps the image); then up to ``max_trials`` rects with
    w ~ U(0.3W, W), h ~ U(0.3H, H) and 0.5 <= h/w <= 2 are drawn until one holds the centre of
    at least one non-crowd object (any rect when the image has none), else a new mode is drawn.
    Objects and crowd boxes whose centres are strictly inside are kept, boxes are clipped to
    the rect, masks cropped.
    """
    while True:
        min_iou = CROP_MODES[rng.integers(len(CROP_MODES))]
        if min_iou is None:
            return sample
        for _ in range(max_trials):
            rect = _draw_crop(sample, rng, min_iou, offset_quirk=offset_quirk, iou_constraint=iou_constraint)
            if rect is not None:
                return _apply_crop(sample, rect)


def _apply_crop(sample: Sample, rect: np.ndarray) -> Sample:
    x0, y0, x1, y1 = (int(v) for v in rect)
    keep, keep_crowd = _centers_inside(sample.boxes, rect), _centers_inside(sample.crowd_boxes, rect)
    image, masks = sample.window(x0, y0, x1, y1)
    return Sample(image, masks[keep], _clip_to_rect(sample.boxes[keep], rect), sample.labels[keep],
                  _clip_to_rect(sample.crowd_boxes[keep_crowd], rect), canvas_size=(y1 - y0, x1 - x0),
                  fill_bgr=sample.fill_bgr)


def _mirror_boxes(boxes: np.ndarray, width: int) -> np.ndarray:
    return np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)


def mirror(sample: Sample, rng: Optional[np.random.Generator], *, force: bool = False) -> Sample:
    """With p = 0.5 (always when ``force``), flip left-right: x -> W - x."""
    if not force and not rng.integers(2):
        return sample
    width = sample.canvas_size[1]
    left = width - sample.offset[0] - sample.image.shape[1]
    return replace(sample, image=cv2.flip(sample.image, 1),
                   masks=np.ascontiguousarray(sample.masks[:, :, ::-1]),
                   boxes=_mirror_boxes(sample.boxes, width),
                   crowd_boxes=_mirror_boxes(sample.crowd_boxes, width), offset=(left, sample.offset[1]))


def resize_masks(masks: np.ndarray, size: int) -> np.ndarray:
    """(n, h, w) uint8 -> (n, size, size) uint8, cv2 INTER_LINEAR per mask.

    One 2-D resize per mask equals the reference's resize of the masks stacked as channels,
    and is faster in OpenCV than a many-channel resize.
    """
    out = np.empty((len(masks), size, size), np.uint8)
    for index, mask in enumerate(masks):
        out[index] = cv2.resize(mask, (size, size), interpolation=cv2.INTER_LINEAR)
    return out


def resize(sample: Sample, size: int) -> Sample:
    """Resize the canvas to size x size (cv2 INTER_LINEAR, no aspect preservation), boxes scaled."""
    sample = sample.materialize()
    height, width = sample.canvas_size
    scale = np.array([size / width, size / height] * 2, np.float32)
    image = cv2.resize(sample.image, (size, size), interpolation=cv2.INTER_LINEAR)
    # Clipped because float32 scaling can land a hair outside the canvas (96.00001).
    return replace(sample, image=image, masks=resize_masks(sample.masks, size),
                   boxes=np.clip(sample.boxes * scale, 0, size),
                   crowd_boxes=np.clip(sample.crowd_boxes * scale, 0, size), canvas_size=(size, size))


def discard_small_boxes(sample: Sample, min_size: float) -> Sample:
    """Drop non-crowd objects whose box is narrower or shorter than ``min_size`` canvas pixels.

    Applied after the resize, in input pixels (SPEC Decisions 3: the reference compares
    4/550 with absolute pixels, which drops almost nothing; we drop what is under 4 px).
    """
    sizes = sample.boxes[:, 2:] - sample.boxes[:, :2]
    keep = np.all(sizes >= min_size, axis=1)
    if keep.all():
        return sample
    return replace(sample, masks=sample.masks[keep], boxes=sample.boxes[keep], labels=sample.labels[keep])
