"""Drawing primitives of the hard shapes sets: shape outlines, backgrounds, fills, dot crowds.

Shapes are rasterised with pycocotools' own polygon fill (``frPyObjects`` + ``decode``), so
the polygon written to the json decodes to exactly the pixels that were painted. Every
function draws from the ``numpy.random.Generator`` it is given and from nothing else.
"""
from typing import List, Optional, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["SHAPE_KINDS", "shape_outline", "rasterize_polygon", "background", "fill_object",
           "dot_crowd", "hue_colour", "paint_noise", "colour_far_from"]

SHAPE_KINDS = ("circle", "ellipse", "triangle", "square", "pentagon", "star", "cross", "ring",
               "semicircle")
ROTATION_FREE = ("circle", "ring")  # rotation changes nothing


def _regular(num_points: int, angle: float, radii=(1.0,)) -> np.ndarray:
    turns = angle + np.arange(num_points) * 2 * np.pi / num_points
    radius = np.resize(np.asarray(radii, np.float64), num_points)
    return np.stack([radius * np.cos(turns), radius * np.sin(turns)], axis=1)


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    return points @ np.array([[cos, sin], [-sin, cos]])


def _unit_outline(kind: str, angle: float) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """-> (outer (k, 2), hole (j, 2) or None) around the origin, radius about 1."""
    if kind in ("circle", "ring"):
        outer = _regular(48, 0.0)
        return outer, (0.55 * outer if kind == "ring" else None)
    if kind == "ellipse":
        return _rotate(_regular(48, 0.0) * np.array([1.0, 0.5]), angle), None
    if kind in ("triangle", "square", "pentagon"):
        sides = {"triangle": 3, "square": 4, "pentagon": 5}[kind]
        return _regular(sides, angle), None
    if kind == "star":
        return _regular(10, angle, radii=(1.0, 0.45)), None
    if kind == "cross":
        a, b = 1.0, 1.0 / 3.0
        plus = np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b], [b, a], [-b, a], [-b, b],
                         [-a, b], [-a, -b], [-b, -b]])
        return _rotate(plus, angle), None
    if kind == "semicircle":
        arc = np.linspace(0.0, np.pi, 25)
        return _rotate(np.stack([np.cos(arc), np.sin(arc)], axis=1), angle), None
    raise ValueError(f"unknown shape kind {kind!r}")


def shape_outline(kind: str, extent: float, left: float, top: float,
                  angle: float) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Polygons of a shape whose larger side is ``extent`` px, its box's corner at (left, top).

    Returns:
        (outer (k, 2), hole (j, 2) or None) float64 pixel coordinates x, y, rounded to 0.01
        px (what the json stores).
    """
    outer, hole = _unit_outline(kind, 0.0 if kind in ROTATION_FREE else angle)
    low, span = outer.min(0), (outer.max(0) - outer.min(0)).max()
    place = lambda points: np.round((points - low) / span * extent + np.array([left, top]), 2)  # noqa: E731
    return place(outer), (place(hole) if hole is not None else None)


def rasterize_polygon(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """(k, 2) x, y -> (height, width) bool, pycocotools' fill of the polygon."""
    rles = mask_utils.frPyObjects([points.reshape(-1).tolist()], height, width)
    return mask_utils.decode(rles)[:, :, 0].astype(bool)


def hue_colour(rng: np.random.Generator, hue_range: Tuple[float, float]) -> np.ndarray:
    """A BGR colour (float64) whose OpenCV hue (0-180) is in ``hue_range``, vivid enough."""
    hsv = np.array([[[rng.uniform(*hue_range) % 180, rng.uniform(140, 255), rng.uniform(110, 255)]]],
                   np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float64)


def _ramp(rng, ys, xs) -> np.ndarray:
    if rng.integers(2):
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * xs + np.sin(angle) * ys
    else:
        ramp = np.hypot(xs - rng.uniform(0, 1), ys - rng.uniform(0, 1))
    return (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)


def _texture(rng, kind: str, ys, xs, amplitude: float) -> np.ndarray:
    """(h, w) float32 zero-mean pattern: stripes, checks or smooth noise."""
    if kind == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(0.03, 0.15)
        return amplitude * np.sin(2 * np.pi * (np.cos(angle) * xs + np.sin(angle) * ys) / period)
    if kind == "checks":
        cell = rng.uniform(0.03, 0.12)
        return amplitude * (2.0 * ((np.floor(xs / cell) + np.floor(ys / cell)) % 2) - 1.0)
    grid = rng.uniform(-amplitude, amplitude, (int(rng.integers(3, 9)), int(rng.integers(3, 9))))
    return cv2.resize(grid.astype(np.float32), (xs.shape[1], xs.shape[0]), interpolation=cv2.INTER_CUBIC)


def background(rng: np.random.Generator, height: int, width: int, textures: Tuple[str, ...],
               amplitude: Tuple[float, float]) -> np.ndarray:
    """(height, width, 3) float32 BGR: a linear or radial two-colour gradient plus one texture."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) / max(height, width)
    start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    image = (start + _ramp(rng, ys, xs)[..., None] * (end - start)).astype(np.float32)
    kind = textures[int(rng.integers(len(textures)))]
    pattern = _texture(rng, kind, ys, xs, rng.uniform(*amplitude))
    tint = rng.uniform(0.5, 1.0, 3).astype(np.float32)
    return image + pattern[..., None] * tint


def fill_object(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, colour: np.ndarray,
                texture: Optional[str]) -> None:
    """Paint ``colour`` over ``mask`` (bool (h, w)) in place, with a faint texture or shading."""
    rows, cols = np.nonzero(mask)
    if texture is None:
        image[rows, cols] = colour
        return
    height, width = mask.shape
    ys, xs = rows.astype(np.float32) / max(height, width), cols.astype(np.float32) / max(height, width)
    if texture == "shade":
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * xs + np.sin(angle) * ys
        pattern = 120.0 * (ramp - ramp.mean())
    else:
        angle, period = rng.uniform(0, np.pi), rng.uniform(0.02, 0.06)
        pattern = 22.0 * np.sin(2 * np.pi * (np.cos(angle) * xs + np.sin(angle) * ys) / period)
    image[rows, cols] = colour + np.clip(pattern, -45, 45)[:, None]


def dot_crowd(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(height, width) bool: 15-60 dots of radius 1-3 px scattered in a 40-120 px region."""
    mask = np.zeros((height, width), np.uint8)
    region_w, region_h = (int(min(rng.uniform(40, 120), size - 8)) for size in (width, height))
    left, top = int(rng.integers(2, width - region_w - 2)), int(rng.integers(2, height - region_h - 2))
    for _ in range(int(rng.integers(15, 61))):
        centre = (int(left + rng.integers(region_w)), int(top + rng.integers(region_h)))
        cv2.circle(mask, centre, int(rng.integers(1, 4)), 1, thickness=-1, lineType=cv2.LINE_8)
    return mask.astype(bool)


def paint_noise(rng: np.random.Generator, image: np.ndarray, sigma: Tuple[float, float]) -> np.ndarray:
    """Gaussian pixel noise, then clip: -> (h, w, 3) uint8."""
    image = image + rng.normal(0, rng.uniform(*sigma), image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def colour_far_from(rng: np.random.Generator, avoid: List[np.ndarray],
                    min_distance: float = 70.0) -> np.ndarray:
    """A random BGR colour at least ``min_distance`` from each of ``avoid`` (best of 50 draws)."""
    best, best_distance = None, -1.0
    for _ in range(50):
        colour = rng.uniform(0, 255, 3)
        distance = min((float(np.linalg.norm(colour - other)) for other in avoid), default=np.inf)
        if distance >= min_distance:
            return colour
        if distance > best_distance:
            best, best_distance = colour, distance
    return best
