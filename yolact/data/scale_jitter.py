"""Scale jitter: the last geometric step, in place of the plain resize to S x S.

The canvas is resized to R x R with R = round(S * r), r ~ U(low, high) (no aspect
preservation, as the SPEC's resize), and the S x S input is the window of it at a random
offset: a crop when R > S, the picture on a mean-coloured S x S canvas when R < S. Objects
then appear smaller or larger than the plain resize makes them (large-scale jitter of
Ghiasi et al., Ultralytics' ``scale``), which a small dataset needs to cover object sizes.
"""
from dataclasses import replace
from typing import Sequence, Tuple

import numpy as np

from yolact.data.geometric import Sample, resize
from yolact.data.instances import clip_boxes

__all__ = ["scale_jitter", "resize_into_window"]


def resize_into_window(sample: Sample, scaled_size: int, left: int, top: int, size: int,
                       fill_bgr: Sequence[float]) -> Sample:
    """Resize the canvas to ``scaled_size`` square, then cut the ``size`` square at (left, top).

    ``left``/``top`` may be negative (the window starts before the picture: padding with
    ``fill_bgr``). Boxes and crowd boxes are shifted by (-left, -top) and clipped to the
    window; objects left without a pixel or without box area are dropped, and so are crowd
    boxes without area.

    Returns:
        A sample of canvas (size, size): image (size, size, 3) float32, masks (n', size, size).
    """
    sample = replace(resize(sample, scaled_size), fill_bgr=tuple(float(v) for v in fill_bgr))
    image, masks = sample.window(left, top, left + size, top + size)
    shift = np.array([left, top, left, top], np.float32)
    boxes, keep = clip_boxes(sample.boxes - shift, 0, 0, size, size)
    keep &= masks.reshape(len(masks), size * size).any(axis=1)
    crowd_boxes, keep_crowd = clip_boxes(sample.crowd_boxes - shift, 0, 0, size, size)
    return Sample(np.ascontiguousarray(image), masks[keep], boxes[keep], sample.labels[keep],
                  crowd_boxes[keep_crowd], canvas_size=(size, size), fill_bgr=sample.fill_bgr)


def _offset(rng: np.random.Generator, free: int) -> int:
    """Uniform integer in [0, free] (crop) or [free, 0] (pad)."""
    return int(rng.integers(min(free, 0), max(free, 0) + 1))


def scale_jitter(sample: Sample, rng: np.random.Generator, size: int, scale_range: Tuple[float, float],
                 fill_bgr: Sequence[float]) -> Sample:
    """r ~ U(*scale_range), R = round(size * r); a random ``size`` window of the R x R resize."""
    scaled_size = max(int(round(size * rng.uniform(*scale_range))), 1)
    free = scaled_size - size
    left, top = _offset(rng, free), _offset(rng, free)
    return resize_into_window(sample, scaled_size, left, top, size, fill_bgr)
