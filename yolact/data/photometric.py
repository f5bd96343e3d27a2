"""The reference's PhotometricDistort (SPEC §8 step 3) on a float32 BGR image.

Parameters and order are the reference's: brightness, then with p = 0.5 either
[contrast, BGR->HSV, saturation, hue, HSV->BGR] or [BGR->HSV, saturation, hue, HSV->BGR,
contrast]. Each of the four distortions applies with p = 0.5. Nothing is clipped, so pixel
values may leave [0, 255] (reference behaviour, kept); the HSV round trip always runs, as in
the reference, because it is not an exact identity on such values.
"""
import cv2
import numpy as np

__all__ = ["photometric_distort", "BRIGHTNESS_DELTA", "CONTRAST_RANGE", "SATURATION_RANGE", "HUE_DELTA"]

BRIGHTNESS_DELTA = 32.0  # add U(-32, 32)
CONTRAST_RANGE = (0.5, 1.5)  # multiply by U(0.5, 1.5)
SATURATION_RANGE = (0.5, 1.5)  # S channel times U(0.5, 1.5)
HUE_DELTA = 18.0  # H + U(-18, 18) degrees, wrapped to [0, 360]


def _random_contrast(image: np.ndarray, rng: np.random.Generator) -> None:
    if rng.integers(2):
        image *= np.float32(rng.uniform(*CONTRAST_RANGE))


def _random_saturation_and_hue(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)  # float32: H in degrees [0, 360)
    if rng.integers(2):
        hsv[:, :, 1] *= np.float32(rng.uniform(*SATURATION_RANGE))
    if rng.integers(2):
        hue = hsv[:, :, 0]  # a view: the edits below write into hsv
        hue += np.float32(rng.uniform(-HUE_DELTA, HUE_DELTA))
        hue[hue > 360.0] -= 360.0
        hue[hue < 0.0] += 360.0
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def photometric_distort(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, saturation and hue.

    Args:
        image: (H, W, 3) float32 BGR in [0, 255]; modified in place and/or replaced.
        rng: the sample's random generator.
    Returns:
        (H, W, 3) float32 BGR, not clipped.
    """
    if rng.integers(2):
        image += np.float32(rng.uniform(-BRIGHTNESS_DELTA, BRIGHTNESS_DELTA))
    contrast_first = bool(rng.integers(2))
    if contrast_first:
        _random_contrast(image, rng)
    image = _random_saturation_and_hue(image, rng)
    if not contrast_first:
        _random_contrast(image, rng)
    return image
