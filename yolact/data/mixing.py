"""Sample mixing for small datasets: mosaic and copy-paste, drawn per sample.

A :class:`SampleMixer` is handed to ``CocoInstanceDataset(mixer=...)``; it runs on the
original image and instances, before the :class:`~yolact.data.transforms.TrainTransform`
(whose photometric, expand, crop, mirror and scale steps then apply to the mixed image). All
draws come from the sample's generator, so a sample is still fixed by (seed, epoch, index).
"""
from typing import Callable, Tuple

import numpy as np

from yolact.data.copy_paste import copy_paste
from yolact.data.instances import Instances
from yolact.data.mosaic import mosaic

__all__ = ["SampleMixer"]

# draw(rng) -> (image (H, W, 3) uint8 BGR, instances) of a random image of the dataset
DrawSample = Callable[[np.random.Generator], Tuple[np.ndarray, Instances]]


class SampleMixer:
    """With ``mosaic_prob`` a mosaic of this image and three random others; then, with
    ``copy_paste_prob``, each object of one more random image pasted on top with p = 0.5 (at
    least one), the source flipped with p = 0.5.

    Args:
        mosaic_prob, copy_paste_prob: probabilities in [0, 1]; 0 switches a mix off.
        mosaic_size: side of the mosaic and of each of its four parts (the network input).
        min_visible_fraction: objects cut or covered down to less than this share of their
            pixels are dropped (both mixes).
    """

    def __init__(self, *, mosaic_prob: float, copy_paste_prob: float, mosaic_size: int,
                 min_visible_fraction: float = 0.1):
        for name, value in (("mosaic_prob", mosaic_prob), ("copy_paste_prob", copy_paste_prob)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.mosaic_prob, self.copy_paste_prob = mosaic_prob, copy_paste_prob
        self.mosaic_size, self.min_visible_fraction = mosaic_size, min_visible_fraction

    def _mosaic(self, image, instances, rng, draw: DrawSample):
        parts = [(image, instances)] + [draw(rng) for _ in range(3)]
        low, high = self.mosaic_size // 4, (3 * self.mosaic_size) // 4
        centre = (int(rng.integers(low, high + 1)), int(rng.integers(low, high + 1)))
        return mosaic(parts, centre, self.mosaic_size, min_visible_fraction=self.min_visible_fraction)

    def _copy_paste(self, image, instances, rng, draw: DrawSample):
        source_image, source = draw(rng)
        chosen = rng.random(len(source["labels"])) < 0.5
        if len(chosen) and not chosen.any():
            chosen[rng.integers(len(chosen))] = True
        return copy_paste(image, instances, source_image, source, chosen, flip=bool(rng.integers(2)),
                          min_visible_fraction=self.min_visible_fraction)

    def __call__(self, image: np.ndarray, instances: Instances, rng: np.random.Generator,
                 draw: DrawSample) -> Tuple[np.ndarray, Instances]:
        """(image (H, W, 3) uint8 BGR, instances) -> the mixed (image, instances)."""
        if self.mosaic_prob > 0 and rng.random() < self.mosaic_prob:
            image, instances = self._mosaic(image, instances, rng, draw)
        if self.copy_paste_prob > 0 and rng.random() < self.copy_paste_prob:
            image, instances = self._copy_paste(image, instances, rng, draw)
        return image, instances
