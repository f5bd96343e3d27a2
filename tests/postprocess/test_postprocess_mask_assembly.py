"""Mask assembly: crop, bilinear taps, windowed vs dense resizing, chunking and RLE."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pycocotools import mask as mask_utils

from yolact.box_ops import crop_masks, crop_window
from yolact.postprocess import mask_assembly
from yolact.postprocess.mask_assembly import (CROPPED_LOGIT, assemble_masks, encode_masks_rle, linear_taps,
                                             mask_logits, mask_probabilities)


def random_case(num_masks: int, seed: int, proto_size=(138, 138)):
    """Prototypes (Hp, Wp, 8), coefficients and boxes of every kind: small, large, full image,
    corners swapped, partly and wholly outside the image."""
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.relu(torch.randn(*proto_size, 8, generator=generator))
    coeffs = torch.tanh(torch.randn(num_masks, 8, generator=generator))
    corners = torch.rand(num_masks, 2, generator=generator) * 1.2 - 0.1
    sizes = torch.rand(num_masks, 2, generator=generator) * 0.6
    boxes = torch.cat([corners, corners + sizes], dim=1)
    special = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.7, 0.8, 0.2, 0.1], [1.1, 1.1, 1.3, 1.4],
                            [0.5, 0.5, 0.5001, 0.5001], [-0.3, 0.2, 0.05, 0.9]])
    boxes[:len(special)] = special[:num_masks]
    return prototypes, coeffs, boxes


def reference_masks(prototypes, coeffs, boxes, image_size, threshold=0.5):
    """The reference's postprocess: (Hp, Wp, n) sigmoid, crop, permute, interpolate, gt."""
    from yolact.box_ops import crop_masks
    probabilities = torch.sigmoid(prototypes @ coeffs.T).permute(2, 0, 1)
    cropped = crop_masks(probabilities, boxes, padding=1)
    return F.interpolate(cropped[None], image_size, mode="bilinear", align_corners=False)[0] > threshold


@pytest.mark.parametrize("out_size,in_size", [(550, 138), (480, 138), (640, 138), (3, 5), (7, 7), (1, 4)])
def test_linear_taps_reproduce_interpolate(out_size, in_size):
    generator = torch.Generator().manual_seed(out_size)
    image = torch.rand(in_size, in_size + 3, generator=generator)
    taps_y, taps_x = linear_taps(out_size, in_size), linear_taps(out_size + 1, in_size + 3)
    along_x = image[:, taps_x.index0] * taps_x.weight0 + image[:, taps_x.index1] * taps_x.weight1
    resized = (along_x[taps_y.index0] * taps_y.weight0[:, None]
               + along_x[taps_y.index1] * taps_y.weight1[:, None])
    expected = F.interpolate(image[None, None], (out_size, out_size + 1), mode="bilinear",
                             align_corners=False)
    # Each kernel computes the float32 source coordinate (i + 0.5) * in/out - 0.5 with at most
    # two roundings (FMA or not: ATen's default kernels round twice) at magnitudes below the
    # input size, so a tap weight can differ by up to one ulp(in_size) between the two, on each
    # axis, times pixel differences of at most 1 (torch.rand): 2 ulp(in_size), plus the sums'
    # few roundings of values in [0, 1]. Measured: 1.2e-7 with vectorised kernels, 7e-6 with
    # ATEN_CPU_CAPABILITY=default at 138 (ulp 1.5e-5).
    ulp = torch.finfo(torch.float32).eps * 2.0 ** math.floor(math.log2(in_size + 3))
    assert torch.allclose(resized, expected[0, 0], rtol=0, atol=2 * ulp + 8 * 2.0 ** -24)
    basis = torch.eye(in_size)[None, :, None, :]  # channel c is pixel c alone: resizing it gives its weights
    weights = F.interpolate(basis, (1, out_size), mode="bilinear", align_corners=False)[0, :, 0]  # (in, out)
    ours = torch.zeros(in_size, out_size)
    ours[taps_y.index0, torch.arange(out_size)] += taps_y.weight0
    ours[taps_y.index1, torch.arange(out_size)] += taps_y.weight1
    if torch.backends.cpu.get_cpu_capability() == "DEFAULT":  # no FMA: within one ulp(in_size)
        assert torch.allclose(ours, weights, rtol=0, atol=ulp)
    else:  # the vectorised kernels' fused multiply-add, reproduced exactly
        assert torch.equal(ours, weights)


def test_linear_taps_by_hand():
    # 2 -> 4: source coordinates (i + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25;
    # the last one reads pixel 1 twice (the second tap is clamped to the last pixel).
    taps = linear_taps(4, 2)
    assert taps.index0.tolist() == [0, 0, 0, 1] and taps.index1.tolist() == [1, 1, 1, 1]
    assert taps.weight1.tolist() == [0.0, 0.25, 0.75, 0.25]
    assert taps.weight0.tolist() == [1.0, 0.75, 0.25, 0.75]


def test_crop_of_probabilities_is_exact_on_a_tiny_case():
    prototypes = torch.zeros(10, 10, 1)  # sigmoid(0) = 0.5 everywhere before the crop
    boxes = torch.tensor([[0.3, 0.4, 0.6, 0.55]])
    found = mask_probabilities(prototypes, torch.ones(1, 1), boxes)
    # x: [3 - 1, 6 + 1) = columns 2..6; y: [4 - 1, 5.5 + 1) = rows 3..6 (float bounds, no rounding).
    expected = torch.zeros(1, 10, 10)
    expected[0, 3:7, 2:7] = 0.5
    assert torch.equal(found, expected)


def test_crop_window_is_the_kept_pixels_by_hand():
    boxes = torch.tensor([[0.3, 0.4, 0.6, 0.55], [0.0, 0.0, 0.05, 1.0]])
    window = crop_window(boxes, (10, 10), padding=1)
    expected = torch.zeros(2, 10, 10, dtype=torch.bool)
    expected[0, 3:7, 2:7] = True  # as above
    expected[1, :, 0:2] = True  # x: [0 - 1, 0.5 + 1) clipped to columns 0..1; y: every row
    assert torch.equal(window, expected)
    assert torch.equal(crop_masks(torch.full((2, 10, 10), 0.5), boxes), expected * 0.5)


def test_assembled_mask_by_hand():
    # One 2x2 prototype, probability 1 at the top-left pixel and ~0 elsewhere; box = whole image.
    prototypes = torch.tensor([[[20.0], [-20.0]], [[-20.0], [-20.0]]])
    masks = assemble_masks(prototypes, torch.ones(1, 1), torch.tensor([[0.0, 0.0, 1.0, 1.0]]), (4, 4))
    # Resized probability = (row weight of pixel 0) * (column weight of pixel 0), weights
    # 1, 0.75, 0.25, 0: above 0.5 on the top-left 2x2 block only ((1, 1) gets 0.5625).
    expected = torch.zeros(1, 4, 4, dtype=torch.bool)
    expected[0, :2, :2] = True
    assert torch.equal(masks, expected)


@pytest.mark.parametrize("image_size", [(550, 550), (480, 640), (37, 91), (1000, 300)])
def test_windowed_and_dense_equal_the_reference_operation(image_size):
    prototypes, coeffs, boxes = random_case(12, seed=image_size[0])
    expected = reference_masks(prototypes, coeffs, boxes, image_size)
    for windowed in (True, False):
        found = assemble_masks(prototypes, coeffs, boxes, image_size, chunk_size=5, windowed=windowed)
        assert found.dtype == torch.bool and found.shape == (12, *image_size)
        assert torch.equal(found, expected)


def test_threshold_is_strict_and_configurable():
    prototypes, coeffs, boxes = random_case(6, seed=5)
    for threshold in (0.3, 0.8):
        expected = reference_masks(prototypes, coeffs, boxes, (60, 70), threshold=threshold)
        assert torch.equal(assemble_masks(prototypes, coeffs, boxes, (60, 70), threshold=threshold), expected)


def test_chunked_assembly_equals_one_shot():
    prototypes, coeffs, boxes = random_case(23, seed=7)
    one_shot = assemble_masks(prototypes, coeffs, boxes, (120, 90), chunk_size=1000)
    for chunk_size in (1, 4, 22):
        chunked = assemble_masks(prototypes, coeffs, boxes, (120, 90), chunk_size=chunk_size)
        assert torch.equal(chunked, one_shot)


@pytest.mark.parametrize("windowed", [True, False])
def test_rle_decodes_to_the_bool_masks(windowed):
    prototypes, coeffs, boxes = random_case(9, seed=11)
    masks = assemble_masks(prototypes, coeffs, boxes, (75, 130), windowed=windowed)
    rles = encode_masks_rle(prototypes, coeffs, boxes, (75, 130), chunk_size=4, windowed=windowed)
    assert len(rles) == 9
    assert all(isinstance(rle["counts"], str) and rle["size"] == [75, 130] for rle in rles)
    decoded = mask_utils.decode([dict(rle, counts=rle["counts"].encode()) for rle in rles])  # (h, w, K)
    assert np.array_equal(decoded.transpose(2, 0, 1).astype(bool), masks.numpy())


def test_rle_holds_one_chunk_at_a_time(monkeypatch):
    sizes = []
    original = mask_assembly.mask_probabilities

    def recording(prototypes, mask_coeffs, boxes):
        sizes.append(mask_coeffs.shape[0])
        return original(prototypes, mask_coeffs, boxes)

    monkeypatch.setattr(mask_assembly, "mask_probabilities", recording)
    prototypes, coeffs, boxes = random_case(10, seed=2)
    assert len(encode_masks_rle(prototypes, coeffs, boxes, (40, 40), chunk_size=3)) == 10
    assert sizes == [3, 3, 3, 1]


def test_no_detection():
    prototypes = torch.rand(138, 138, 32)
    masks = assemble_masks(prototypes, torch.zeros(0, 32), torch.zeros(0, 4), (480, 640))
    assert masks.shape == (0, 480, 640) and masks.dtype == torch.bool
    assert encode_masks_rle(prototypes, torch.zeros(0, 32), torch.zeros(0, 4), (480, 640)) == []


@pytest.mark.parametrize("windowed", [True, False])
def test_crop_at_image_size_keeps_the_pixels_whose_centre_is_in_the_box(windowed):
    prototypes = torch.full((4, 4, 1), 20.0)  # probability ~1 on every prototype pixel
    boxes = torch.tensor([[0.2, 0.25, 0.7, 1.0]])  # in a 8 x 10 image: x 2..7, y 2..8 pixels
    # The prototype crop (padding 1) keeps the whole 4 x 4 grid here, so the plain mask is full.
    plain = assemble_masks(prototypes, torch.ones(1, 1), boxes, (8, 10), windowed=windowed)
    assert bool(plain.all())
    cropped = assemble_masks(prototypes, torch.ones(1, 1), boxes, (8, 10), windowed=windowed,
                             crop_at_image_size=True)
    # Column c is kept when 2 <= c + 0.5 < 7 (columns 2..6), row r when 2 <= r + 0.5 < 8 (rows 2..7).
    expected = torch.zeros(1, 8, 10, dtype=torch.bool)
    expected[0, 2:8, 2:7] = True
    assert torch.equal(cropped, expected)
    rles = encode_masks_rle(prototypes, torch.ones(1, 1), boxes, (8, 10), windowed=windowed,
                            crop_at_image_size=True)
    decoded = mask_utils.decode([dict(rle, counts=rle["counts"].encode()) for rle in rles])
    assert np.array_equal(decoded.transpose(2, 0, 1).astype(bool), expected.numpy())


def pixel_centres_in_boxes(boxes, height, width):
    """(n, h, w) bool: the pixel's centre lies in the box (boxes xyxy relative, corners may swap)."""
    x1, x2 = torch.minimum(boxes[:, 0], boxes[:, 2]), torch.maximum(boxes[:, 0], boxes[:, 2])
    y1, y2 = torch.minimum(boxes[:, 1], boxes[:, 3]), torch.maximum(boxes[:, 1], boxes[:, 3])
    centres_x, centres_y = torch.arange(width) + 0.5, torch.arange(height) + 0.5
    inside_x = (centres_x >= x1[:, None] * width) & (centres_x < x2[:, None] * width)  # (n, w)
    inside_y = (centres_y >= y1[:, None] * height) & (centres_y < y2[:, None] * height)  # (n, h)
    return inside_y[:, :, None] & inside_x[:, None, :]


@pytest.mark.parametrize("windowed", [True, False])
def test_crop_at_image_size_is_the_plain_mask_and_the_box(windowed):
    prototypes, coeffs, boxes = random_case(12, seed=3)
    height, width = 90, 130
    plain = reference_masks(prototypes, coeffs, boxes, (height, width))
    expected = plain & pixel_centres_in_boxes(boxes, height, width)
    found = assemble_masks(prototypes, coeffs, boxes, (height, width), chunk_size=5, windowed=windowed,
                           crop_at_image_size=True)
    assert torch.equal(found, expected)


def test_cropped_logits_are_the_logits_where_the_probabilities_are_kept():
    generator = torch.Generator().manual_seed(2)
    prototypes = torch.randn(10, 10, 3, generator=generator)
    coeffs = torch.randn(2, 3, generator=generator)
    boxes = torch.tensor([[0.3, 0.4, 0.6, 0.55], [0.9, 0.8, 0.1, 0.2]])
    logits = mask_logits(prototypes, coeffs, boxes)
    kept = mask_probabilities(torch.zeros(10, 10, 1), torch.ones(2, 1), boxes) > 0  # sigmoid(0) where kept
    assert 0 < kept.sum() < kept.numel()
    assert torch.equal(logits[kept], torch.einsum("hwk,nk->nhw", prototypes, coeffs)[kept])
    assert torch.all(logits[~kept] == CROPPED_LOGIT)


@pytest.mark.parametrize("windowed", [True, False])
def test_logit_interpolation_by_hand(windowed):
    """One row of two prototype pixels with logits 4 and -4, resized to 4 pixels: the taps give
    p0, 0.75 p0 + 0.25 p1, 0.25 p0 + 0.75 p1, p1. Logits 4, 2, -2, -4 against logit(0.2) = -1.386:
    on, on, off, off; probabilities 0.982, 0.741, 0.259, 0.018 against 0.2: on, on, on, off."""
    prototypes = torch.tensor([[[4.0], [-4.0]]])  # (1, 2, 1)
    whole_image = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    found = {interpolate: assemble_masks(prototypes, torch.ones(1, 1), whole_image, (1, 4), threshold=0.2,
                                         windowed=windowed, interpolate=interpolate)[0, 0].tolist()
             for interpolate in ("logit", "probability")}
    assert found == {"logit": [True, True, False, False], "probability": [True, True, True, False]}


@pytest.mark.parametrize("crop_at_image_size", [False, True])
@pytest.mark.parametrize("windowed", [True, False])
def test_logit_interpolation_is_the_sigmoid_of_the_resized_logits_above_the_threshold(windowed,
                                                                                       crop_at_image_size):
    """Against float64: sigmoid(F.interpolate(cropped logits)) > threshold, cut at the boxes when
    asked; pixels whose float64 logit lies within 1e-4 of the threshold's may round either way."""
    prototypes, coeffs, boxes = random_case(12, seed=21)
    height, width, threshold = 90, 130, 0.3
    logits = mask_logits(prototypes.double(), coeffs.double(), boxes.double())
    resized = F.interpolate(logits[None], (height, width), mode="bilinear", align_corners=False)[0]
    expected = torch.sigmoid(resized) > threshold
    if crop_at_image_size:
        expected &= pixel_centres_in_boxes(boxes, height, width)  # as the float32 boxes say
    found = assemble_masks(prototypes, coeffs, boxes, (height, width), threshold=threshold, windowed=windowed,
                           crop_at_image_size=crop_at_image_size, interpolate="logit")
    undecided = (resized - math.log(threshold / (1 - threshold))).abs() < 1e-4
    assert found.any() and not torch.any((found != expected) & ~undecided)
    rles = encode_masks_rle(prototypes, coeffs, boxes, (height, width), threshold=threshold, chunk_size=5,
                            windowed=windowed, crop_at_image_size=crop_at_image_size, interpolate="logit")
    decoded = mask_utils.decode([{"size": rle["size"], "counts": rle["counts"].encode()} for rle in rles])
    assert np.array_equal(decoded.transpose(2, 0, 1).astype(bool), found.numpy())


def test_unknown_interpolation_is_refused():
    prototypes, coeffs, boxes = random_case(2, seed=1)
    with pytest.raises(ValueError, match="interpolate must be one of"):
        assemble_masks(prototypes, coeffs, boxes, (10, 10), interpolate="nearest")
    for threshold in (0.0, 1.0):  # no logit
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            assemble_masks(prototypes, coeffs, boxes, (10, 10), threshold=threshold, interpolate="logit")
