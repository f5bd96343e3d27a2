"""Anchors ("priors") of every pyramid level, in the reference's order (SPEC §4)."""
import math
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn

__all__ = ["AnchorGenerator"]

_MAX_CACHED = 8


class AnchorGenerator(nn.Module):
    """Anchor boxes as relative (cx, cy, w, h), one set per cell of each pyramid level.

    Order: level by level (P3 first); within a level row y, then column x; within a cell each
    scale, then each aspect ratio. So anchor ``a`` of cell (y, x) has flat index
    ``(y*W + x)*A + a``, matching :func:`~yolact.modeling.head.flatten_dense_predictions`.

    Sizes follow the reference: the aspect ratio enters as sqrt(ar), sizes are in input pixels
    divided by the input size (``max_size``, not the feature size): w = scale*sqrt(ar)/size,
    h = scale/sqrt(ar)/size. With ``use_square_anchors`` (reference quirk kept on purpose as the
    default, SPEC §4) h is then set to w, so every anchor is square. Anchors are not clipped.

    Args:
        scales_per_level: anchor scales in input pixels for each level, e.g.
            ((24,), (48,), (96,), (192,), (384,)).
        aspect_ratios: width/height ratios, in cell order, e.g. (1.0, 0.5, 2.0).
        use_square_anchors: force h = w (the reference's behaviour).
    """

    def __init__(self, *, scales_per_level: Sequence[Sequence[float]], aspect_ratios: Sequence[float],
                 use_square_anchors: bool = True):
        super().__init__()
        self.scales_per_level = tuple(tuple(float(s) for s in scales) for scales in scales_per_level)
        self.aspect_ratios = tuple(float(ar) for ar in aspect_ratios)
        self.use_square_anchors = use_square_anchors
        counts = {len(scales) for scales in self.scales_per_level}
        if len(counts) != 1:
            raise ValueError(f"the shared head needs the same number of scales on every level, got "
                             f"{[len(s) for s in self.scales_per_level]}")
        self.num_anchors_per_cell = counts.pop() * len(self.aspect_ratios)
        self._cache: Dict[tuple, torch.Tensor] = {}

    def forward(self, feature_sizes: Sequence[Tuple[int, int]], input_size: int, *,
                device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Anchors [A_total, 4] (cx, cy, w, h) relative to the image, on ``device`` in ``dtype``.

        Args:
            feature_sizes: (H_l, W_l) of each level, as many as ``scales_per_level``.
            input_size: the network input size in pixels (the reference's ``max_size``, 550).

        A_total = sum_l H_l*W_l*A; 19248 for yolact_base at 550. Cached per (sizes, input size,
        device, dtype); the cached tensor must not be modified in place.
        """
        sizes = tuple((int(h), int(w)) for h, w in feature_sizes)
        if len(sizes) != len(self.scales_per_level):
            raise ValueError(f"{len(sizes)} feature maps for {len(self.scales_per_level)} anchor levels")
        key = (sizes, int(input_size), torch.device(device), dtype)
        if key not in self._cache:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            # built in float64 on the CPU, like the reference's Python floats, then cast once
            anchors = torch.cat([self._level_anchors(size, scales, int(input_size))
                                 for size, scales in zip(sizes, self.scales_per_level)])
            self._cache[key] = anchors.to(device=device, dtype=dtype)
        return self._cache[key]

    def _cell_sizes(self, scales: Sequence[float], input_size: int) -> List[Tuple[float, float]]:
        """(w, h) of the anchors of one cell, in cell order, relative to the input size."""
        sizes = []
        for scale in scales:
            for aspect_ratio in self.aspect_ratios:
                ratio_sqrt = math.sqrt(aspect_ratio)
                width = scale * ratio_sqrt / input_size
                height = width if self.use_square_anchors else scale / ratio_sqrt / input_size
                sizes.append((width, height))
        return sizes

    def _level_anchors(self, size: Tuple[int, int], scales: Sequence[float], input_size: int) -> torch.Tensor:
        height, width = size
        cell_sizes = torch.tensor(self._cell_sizes(scales, input_size), dtype=torch.float64)  # [A, 2]
        center_y = (torch.arange(height, dtype=torch.float64) + 0.5) / height
        center_x = (torch.arange(width, dtype=torch.float64) + 0.5) / width
        grid_y, grid_x = torch.meshgrid(center_y, center_x, indexing="ij")  # [H, W] each
        centers = torch.stack([grid_x, grid_y], dim=-1)  # [H, W, 2] (cx, cy)
        num_cell_anchors = cell_sizes.shape[0]
        centers = centers[:, :, None, :].expand(height, width, num_cell_anchors, 2)
        sizes = cell_sizes[None, None].expand(height, width, num_cell_anchors, 2)
        return torch.cat([centers, sizes], dim=-1).reshape(-1, 4)  # [H*W*A, 4]
