"""Anchors: exact values, order, count and caching (SPEC §4)."""
import math

import torch

from yolact.modeling.anchors import AnchorGenerator

_SIZES_550 = [(69, 69), (35, 35), (18, 18), (9, 9), (5, 5)]


def _base_generator(square=True):
    return AnchorGenerator(scales_per_level=[(24,), (48,), (96,), (192,), (384,)],
                           aspect_ratios=(1.0, 0.5, 2.0), use_square_anchors=square)


def _hand_computed_2x2(square):
    sides = [(24 * math.sqrt(ar) / 550, 24 / math.sqrt(ar) / 550) for ar in (1.0, 0.5, 2.0)]
    rows = []
    for cy in (0.25, 0.75):          # rows first
        for cx in (0.25, 0.75):      # then columns
            for w, h in sides:       # then aspect ratios 1, 1/2, 2
                rows.append([cx, cy, w, w if square else h])
    return torch.tensor(rows, dtype=torch.float64)


def test_2x2_map_exact_square_and_not():
    for square in (True, False):
        generator = AnchorGenerator(scales_per_level=[(24,)], aspect_ratios=(1.0, 0.5, 2.0),
                                    use_square_anchors=square)
        anchors = generator([(2, 2)], 550, device=torch.device("cpu"), dtype=torch.float64)
        assert torch.equal(anchors, _hand_computed_2x2(square))


def test_square_anchor_sides_are_the_reference_quirk():
    anchors = AnchorGenerator(scales_per_level=[(24,)], aspect_ratios=(1.0, 0.5, 2.0))(
        [(1, 1)], 550, device="cpu", dtype=torch.float64)
    assert torch.equal(anchors[:, 2], anchors[:, 3])
    expected = torch.tensor([24.0, 24 * 0.5 ** 0.5, 24 * 2 ** 0.5], dtype=torch.float64)
    assert torch.allclose(anchors[:, 2] * 550, expected)


def test_rectangular_levels_use_their_own_height_and_width():
    generator = AnchorGenerator(scales_per_level=[(100,)], aspect_ratios=(1.0,))
    anchors = generator([(2, 3)], 400, device="cpu", dtype=torch.float64)
    expected_centres = [[(i + 0.5) / 3, (j + 0.5) / 2] for j in range(2) for i in range(3)]
    assert torch.equal(anchors[:, :2], torch.tensor(expected_centres, dtype=torch.float64))
    assert torch.equal(anchors[:, 2:], torch.full((6, 2), 0.25, dtype=torch.float64))


def test_count_at_550_and_level_order():
    anchors = _base_generator()(_SIZES_550, 550, device="cpu", dtype=torch.float32)
    assert anchors.shape == (19248, 4) and anchors.dtype == torch.float32
    # P3 first: the first cell of P3 at (0.5/69, 0.5/69), side 24/550; P7 last: side 384*sqrt(2)/550
    assert torch.allclose(anchors[0], torch.tensor([0.5 / 69, 0.5 / 69, 24 / 550, 24 / 550]))
    largest = 384 * 2 ** 0.5 / 550
    assert torch.allclose(anchors[-1], torch.tensor([4.5 / 5, 4.5 / 5, largest, largest]))
    start = 0
    for (height, width), scale in zip(_SIZES_550, (24, 48, 96, 192, 384)):
        level = anchors[start:start + height * width * 3]
        cell_sides = torch.tensor([scale, scale * 0.5 ** 0.5, scale * 2 ** 0.5]) / 550
        expected_sides = cell_sides.repeat(height * width)  # the 3 sides repeat cell after cell
        assert torch.allclose(level[:, 2], expected_sides)
        start += height * width * 3


def test_cache_is_per_size_device_and_dtype():
    generator = _base_generator()
    first = generator(_SIZES_550, 550, device="cpu", dtype=torch.float32)
    assert generator(_SIZES_550, 550, device="cpu", dtype=torch.float32) is first
    as_double = generator(_SIZES_550, 550, device="cpu", dtype=torch.float64)
    assert as_double.dtype == torch.float64 and torch.equal(as_double.float(), first)
    other_input = generator(_SIZES_550, 700, device="cpu", dtype=torch.float32)
    assert torch.allclose(other_input[:, 2] * 700, first[:, 2] * 550)


def test_anchors_equal_the_reference_priors(reference):
    """The generator alone, at the fixture's input size and scales (192 px: 8, 16, 33, 67, 134
    and grids 24, 12, 6, 3, 2; 550 px: the yolact_base scales and grids 69 .. 5)."""
    size = side = reference.input_size
    level_sizes = []
    for halving in range(7):  # every stride-2 stage rounds up; P3 is the third halving, P7 the 7th
        side = (side + 1) // 2
        if halving >= 2:
            level_sizes.append((side, side))
    generator = AnchorGenerator(scales_per_level=[(scale,) for scale in reference.anchor_scales],
                                aspect_ratios=(1.0, 0.5, 2.0), use_square_anchors=True)
    anchors = generator(level_sizes, size, device="cpu", dtype=torch.float32)
    expected = reference.dump["train"]["preds"]["priors"]
    assert anchors.shape == expected.shape == (reference.num_anchors, 4)
    assert torch.equal(anchors, expected)
