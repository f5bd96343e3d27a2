"""Training and evaluation transforms: BGR uint8 image + instances -> network input + target.

A transform is called as ``transform(image_bgr, instances, rng)``:

- ``image_bgr``: (H, W, 3) uint8 BGR, as ``cv2.imread`` returns it;
- ``instances``: dict of numpy arrays over that image: ``masks`` (n, H, W) uint8 0/1,
  ``boxes`` (n, 4) float32 xyxy absolute pixels, ``labels`` (n,) int64 contiguous,
  ``crowd_boxes`` (m, 4) float32 xyxy absolute pixels;
- ``rng``: the ``numpy.random.Generator`` of this sample (the only source of randomness).

It returns ``(image, target)``: image FloatTensor [3, S, S] normalised RGB; target dict with
``boxes`` float32 (n, 4) xyxy relative to the input (0..1), ``labels`` int64 (n,), ``masks``
uint8 (n, S, S) and ``crowd_boxes`` float32 (m, 4) xyxy relative.
"""
import logging
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from yolact.data.geometric import (Sample, discard_small_boxes, expand, mirror, random_sample_crop, resize,
                                   resize_masks)
from yolact.data.photometric import photometric_distort
from yolact.data.scale_jitter import scale_jitter
from yolact.data.uint8_images import to_uint8_tensor

__all__ = ["PIXEL_MEAN_BGR", "PIXEL_STD_BGR", "normalize_to_tensor", "eval_transform", "EvalTransform",
           "TrainTransform"]

logger = logging.getLogger("yolact")

# The reference's BackboneTransform constants (SPEC §8 step 12), BGR order.
PIXEL_MEAN_BGR = (103.94, 116.78, 123.68)
PIXEL_STD_BGR = (57.38, 57.12, 58.40)


def normalize_to_tensor(image_bgr: np.ndarray, mean_bgr: Sequence[float] = PIXEL_MEAN_BGR,
                        std_bgr: Sequence[float] = PIXEL_STD_BGR) -> torch.Tensor:
    """(H, W, 3) float32 BGR -> FloatTensor [3, H, W] RGB of (pixel - mean) / std.

    The arithmetic is the reference's, in float32: subtract, divide, then reorder to RGB.
    """
    height, width = image_bgr.shape[:2]
    planes_bgr = image_bgr.transpose(2, 0, 1)  # (3, H, W) view
    out = np.empty((3, height, width), np.float32)
    for rgb_index, bgr_index in enumerate((2, 1, 0)):
        np.subtract(planes_bgr[bgr_index], np.float32(mean_bgr[bgr_index]), out=out[rgb_index])
        np.divide(out[rgb_index], np.float32(std_bgr[bgr_index]), out=out[rgb_index])
    return torch.from_numpy(out)


def eval_transform(image_bgr: np.ndarray, input_size: int) -> torch.Tensor:
    """The reference's BaseTransform: float32, cv2.resize INTER_LINEAR to S x S, normalise, RGB.

    Args:
        image_bgr: (H, W, 3) uint8 BGR.
        input_size: S.
    Returns:
        FloatTensor [3, S, S].
    """
    image = cv2.resize(image_bgr.astype(np.float32), (input_size, input_size), interpolation=cv2.INTER_LINEAR)
    return normalize_to_tensor(image)


def _relative(boxes: np.ndarray, height: int, width: int) -> torch.Tensor:
    scale = np.array([width, height, width, height], np.float32)
    return torch.from_numpy(np.clip(boxes / scale, 0.0, 1.0).astype(np.float32).reshape(-1, 4))


class EvalTransform:
    """Resize and normalise only; masks resized to the input too, boxes made relative.

    With ``uint8_output`` the image is the resized one as a ByteTensor [3, S, S] RGB, normalised
    later on the device (:mod:`yolact.data.uint8_images`).
    """

    def __init__(self, input_size: int, *, uint8_output: bool = False):
        self.input_size, self.uint8_output = input_size, uint8_output

    def __call__(self, image_bgr: np.ndarray, instances: Dict[str, np.ndarray],
                 rng: Optional[np.random.Generator] = None) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        height, width = image_bgr.shape[:2]
        target = {
            "boxes": _relative(instances["boxes"], height, width),
            "labels": torch.as_tensor(instances["labels"], dtype=torch.int64),
            "masks": torch.from_numpy(resize_masks(instances["masks"], self.input_size)),
            "crowd_boxes": _relative(instances["crowd_boxes"], height, width),
        }
        if self.uint8_output:
            resized = cv2.resize(image_bgr.astype(np.float32), (self.input_size,) * 2, interpolation=cv2.INTER_LINEAR)
            return to_uint8_tensor(resized), target
        return eval_transform(image_bgr, self.input_size), target


class TrainTransform:
    """SPEC §8 augmentation: photometric, expand, random crop, mirror, resize, small-box discard.

    Args:
        input_size: S, the square network input.
        photometric, expand, random_crop, mirror: switch each step on or off.
        min_box_size: non-crowd objects whose box is under this many input pixels wide or high
            after the resize are dropped (SPEC Decisions 3).
        crop_offset_quirk: draw crop offsets as the reference does, in (1, W - w] instead of
            [0, W - w) (SPEC §8); True by default.
        crop_iou_constraint: apply the minimum-IoU rule of the crop modes, which the reference
            never applies (SPEC Decisions 3); False by default.
        max_expand_ratio: expand's largest zoom-out (4 in the reference).
        scale_range: (low, high): scale jitter in place of the plain resize (see
            ``scale_jitter.py``); None (the reference) resizes the canvas to S x S.
        max_tries: if the geometric steps leave no non-crowd object of an image that had some
            (all of them under ``min_box_size``), they are drawn again, up to this many times;
            then the image is only resized (and mirrored), and is kept even if that leaves no
            object (a background-only image, which the loss handles, SPEC Decisions 6).
        pixel_mean_bgr, pixel_std_bgr: the normalisation (the reference's by default).
        uint8_output: hand over the augmented image as a ByteTensor [3, S, S] RGB, normalised
            later on the device (:mod:`yolact.data.uint8_images`).
    """

    def __init__(self, input_size: int, *, photometric: bool = True, expand: bool = True,
                 random_crop: bool = True, mirror: bool = True, min_box_size: float = 4.0,
                 crop_offset_quirk: bool = True, crop_iou_constraint: bool = False,
                 max_expand_ratio: float = 4.0, max_tries: int = 10,
                 scale_range: Optional[Tuple[float, float]] = None,
                 pixel_mean_bgr: Sequence[float] = PIXEL_MEAN_BGR,
                 pixel_std_bgr: Sequence[float] = PIXEL_STD_BGR, uint8_output: bool = False):
        self.input_size, self.uint8_output = input_size, uint8_output
        self.photometric, self.expand = photometric, expand
        self.random_crop, self.mirror = random_crop, mirror
        self.min_box_size = min_box_size
        self.crop_offset_quirk, self.crop_iou_constraint = crop_offset_quirk, crop_iou_constraint
        self.max_expand_ratio, self.max_tries = max_expand_ratio, max_tries
        if scale_range is not None and not (len(scale_range) == 2 and 0 < scale_range[0] <= scale_range[1]):
            raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, got {scale_range}")
        self.scale_range = None if scale_range is None else (float(scale_range[0]), float(scale_range[1]))
        self.pixel_mean_bgr, self.pixel_std_bgr = tuple(pixel_mean_bgr), tuple(pixel_std_bgr)

    def geometric(self, sample: Sample, rng: np.random.Generator, *, zoom: bool = True) -> Sample:
        """Expand, crop (when ``zoom``), mirror, resize to S (or scale jitter) and drop small boxes."""
        if zoom and self.expand:
            sample = expand(sample, rng, fill_bgr=self.pixel_mean_bgr, max_ratio=self.max_expand_ratio)
        if zoom and self.random_crop:
            sample = random_sample_crop(sample, rng, offset_quirk=self.crop_offset_quirk,
                                        iou_constraint=self.crop_iou_constraint)
        if self.mirror:
            sample = mirror(sample, rng)
        if self.scale_range is None:
            sample = resize(sample, self.input_size)
        else:
            sample = scale_jitter(sample, rng, self.input_size, self.scale_range, self.pixel_mean_bgr)
        return discard_small_boxes(sample, self.min_box_size)

    def augment(self, image_bgr: np.ndarray, instances: Dict[str, np.ndarray],
                rng: np.random.Generator) -> Sample:
        """All steps but the normalisation: a :class:`Sample` at S x S, boxes in input pixels."""
        image = image_bgr.astype(np.float32)
        if self.photometric:
            image = photometric_distort(image, rng)
        original = Sample.from_arrays(image, instances["masks"], instances["boxes"].astype(np.float32),
                                      instances["labels"], instances["crowd_boxes"].astype(np.float32))
        for _ in range(self.max_tries):
            sample = self.geometric(original, rng)
            if sample.num_instances or not original.num_instances:
                return sample
        logger.debug("augmentation left no object in %d draws; using the whole image", self.max_tries)
        return self.geometric(original, rng, zoom=False)

    def __call__(self, image_bgr: np.ndarray, instances: Dict[str, np.ndarray],
                 rng: np.random.Generator) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        sample = self.augment(image_bgr, instances, rng)
        size = self.input_size
        target = {
            "boxes": _relative(sample.boxes, size, size),
            "labels": torch.as_tensor(sample.labels, dtype=torch.int64),
            "masks": torch.from_numpy(np.ascontiguousarray(sample.masks)),
            "crowd_boxes": _relative(sample.crowd_boxes, size, size),
        }
        if self.uint8_output:
            return to_uint8_tensor(sample.image), target
        return normalize_to_tensor(sample.image, self.pixel_mean_bgr, self.pixel_std_bgr), target
