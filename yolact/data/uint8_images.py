"""Images as uint8 from the loaders, normalised on the device (``data.uint8_images``).

A float32 image is 4x the bytes of a uint8 one, in worker-to-main-process queues, in pinned
memory and over PCIe. With ``data.uint8_images`` the transforms stop before the normalisation:
they round the augmented image to the nearest integer, clip it to [0, 255] and hand over a
ByteTensor; :class:`PixelNormalizer` subtracts the mean and divides by the std on the device.

What changes against the float path (``normalize_to_tensor``): the normalised value of each
pixel is that of the rounded and clipped pixel, computed with the same float32 operations
(bitwise equal to ``normalize_to_tensor`` of the rounded image); so it is within
``0.5 / min(std)`` (0.0088 with the reference's std) of the float path where the augmented
pixel lies in [0, 255]. Pixels that the photometric distortion pushed outside [0, 255] are
clipped (the reference keeps them), and the resize's fractional values are rounded.
"""
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["to_uint8_tensor", "PixelNormalizer", "normalize_on_device"]

# the reference's BackboneTransform constants, BGR order (as PIXEL_MEAN_BGR/PIXEL_STD_BGR in transforms.py)
_MEAN_BGR = (103.94, 116.78, 123.68)
_STD_BGR = (57.38, 57.12, 58.40)


def to_uint8_tensor(image_bgr: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float BGR -> ByteTensor [3, H, W] RGB, rounded to nearest (ties to even), clipped to [0, 255]."""
    rgb = np.clip(np.rint(image_bgr[:, :, ::-1]), 0, 255).astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


class PixelNormalizer(nn.Module):
    """uint8 RGB images [N, 3, H, W] -> float32 ``(pixel - mean) / std``; float images (normalised
    by the transforms already) pass through unchanged. Move it to the images' device once."""

    def __init__(self, mean_bgr: Sequence[float] = _MEAN_BGR, std_bgr: Sequence[float] = _STD_BGR):
        super().__init__()
        self.register_buffer("mean", torch.tensor(tuple(mean_bgr)[::-1], dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(tuple(std_bgr)[::-1], dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8:
            return images
        # a tensor divisor, not a Python scalar: torch turns division by a scalar into a
        # multiplication by its reciprocal, which is not bitwise the numpy division
        return (images.float() - self.mean) / self.std


@lru_cache(maxsize=8)
def _normalizer_on(device: torch.device) -> PixelNormalizer:
    return PixelNormalizer().to(device)


def normalize_on_device(images: torch.Tensor) -> torch.Tensor:
    """:class:`PixelNormalizer` with the reference's constants, on ``images``' device (built once per device)."""
    return _normalizer_on(images.device)(images)
