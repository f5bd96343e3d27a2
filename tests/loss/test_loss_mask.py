"""Lincomb mask loss: probability-space BCE, crop, area normalisation, subsampling (SPEC §6.4)."""
import math

import torch
import torch.nn.functional as F

from yolact.loss import downsample_binary_masks, lincomb_mask_loss
from yolact.loss.mask_loss import probability_bce

LOG2 = math.log(2.0)


def test_probability_bce_equals_torch_bce_in_value_and_gradient():
    probs = torch.tensor([0.0, 1e-30, 1e-13, 0.3, 1 - 1e-7, 1.0, 0.0, 1.0, 0.5, 0.9])
    targets = torch.tensor([1.0, 1, 1, 0, 0, 0, 0, 1, 1, 0])
    ours_in, torch_in = probs.clone().requires_grad_(), probs.clone().requires_grad_()
    ours = probability_bce(ours_in, targets)
    expected = F.binary_cross_entropy(torch_in, targets, reduction="none")
    torch.testing.assert_close(ours, expected, rtol=1e-6, atol=0.0)
    assert ours[0].item() == 100.0 and ours[5].item() == 100.0  # log clamped at -100
    weights = torch.arange(1.0, 11.0)
    (ours * weights).sum().backward()
    (expected * weights).sum().backward()
    assert torch.equal(ours_in.grad, torch_in.grad)


def test_downsample_binary_masks_bilinear_then_threshold():
    masks = torch.zeros((1, 4, 4), dtype=torch.uint8)
    masks[0, :2, :2] = 1  # top-left block: every 2x2 average is 1
    masks[0, 2:, 2] = 1  # half of the bottom-right block: average 0.5, not > 0.5
    masks[0, 0, 2:] = 1  # 2 of 4 pixels -> 0.5
    masks[0, 2, 0] = masks[0, 3, 0] = masks[0, 3, 1] = 1  # 3 of 4 -> 0.75
    small = downsample_binary_masks(masks, (2, 2), torch.float32)
    assert small.tolist() == [[[1.0, 0.0], [1.0, 0.0]]]
    assert downsample_binary_masks(masks[:0], (2, 2), torch.float32).shape == (0, 2, 2)


def _single_image_case(num_positives, boxes):
    """Zero prototypes -> every logit 0 -> probability 0.5 inside each crop, 0 outside."""
    proto_size, num_protos = 8, 4
    prototypes = torch.zeros((1, proto_size, proto_size, num_protos), requires_grad=True)
    mask_coeffs = torch.rand((1, 10, num_protos), generator=torch.Generator().manual_seed(0)).requires_grad_()
    conf_t = torch.zeros((1, 10), dtype=torch.int64)
    conf_t[0, :num_positives] = 1
    idx_t = torch.zeros((1, 10), dtype=torch.int64)
    idx_t[0, :num_positives] = torch.arange(num_positives)
    return prototypes, mask_coeffs, conf_t, idx_t, torch.tensor(boxes), torch.zeros((len(boxes), 8, 8))


def test_target_pixel_outside_crop_costs_exactly_100_and_no_gradient():
    # Box [0.25, 0.75]^2 on 8 proto pixels: bounds 2 - 1 = 1 and 6 + 1 = 7 -> 6 x 6 pixels kept,
    # GT box area 4 x 4 = 16 proto pixels.
    prototypes, coeffs, conf_t, idx_t, boxes, masks = _single_image_case(1, [[0.25, 0.25, 0.75, 0.75]])
    masks[0, 3:5, 3:5] = 1
    masks[0, 0, 7] = 1  # outside the crop
    loss = lincomb_mask_loss(prototypes, coeffs, conf_t, idx_t, boxes, masks, torch.tensor([0]))
    expected = (36 * LOG2 + 100.0) / 16
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)
    # The same case with one prototype and coefficient 1: the prototype is the per-pixel logit.
    pixel_logits = torch.zeros((1, 8, 8, 1), requires_grad=True)
    lincomb_mask_loss(pixel_logits, torch.ones((1, 10, 1)), conf_t, idx_t, boxes, masks,
                      torch.tensor([0])).backward()
    pred_grad = pixel_logits.grad[..., 0]
    assert pred_grad[0, 0, 7].item() == 0.0  # the 100 has no gradient
    assert pred_grad[0, 0, 0].item() == 0.0  # cropped-out target-0 pixel
    # Inside the crop: d/dx BCE(sigmoid(x), t) / 16 = (sigmoid(x) - t) / 16.
    assert math.isclose(pred_grad[0, 3, 3].item(), -0.5 / 16, rel_tol=1e-5)
    assert math.isclose(pred_grad[0, 1, 1].item(), 0.5 / 16, rel_tol=1e-5)


def _per_positive_losses(boxes, masks):
    """Hand value of each positive with probability 0.5 in the crop and 0 outside."""
    losses = []
    for box, mask in zip(boxes.tolist(), masks):
        x1, y1, x2, y2 = box
        cols = [c for c in range(8) if max(x1 * 8 - 1, 0) <= c < min(x2 * 8 + 1, 8)]
        rows = [r for r in range(8) if max(y1 * 8 - 1, 0) <= r < min(y2 * 8 + 1, 8)]
        inside = torch.zeros((8, 8), dtype=torch.bool)
        inside[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = True
        outside_target = (mask.bool() & ~inside).sum().item()
        losses.append((inside.sum().item() * LOG2 + 100.0 * outside_target) / ((x2 - x1) * 8 * (y2 - y1) * 8))
    return losses


def test_area_normalisation_and_sum_over_positives():
    boxes = [[0.25, 0.25, 0.75, 0.75], [0.0, 0.0, 0.5, 0.25], [0.5, 0.125, 1.0, 1.0]]
    prototypes, coeffs, conf_t, idx_t, gt_boxes, masks = _single_image_case(3, boxes)
    masks[1, 7, 7] = 1
    loss = lincomb_mask_loss(prototypes, coeffs, conf_t, idx_t, gt_boxes, masks, torch.tensor([0]))
    assert math.isclose(loss.item(), sum(_per_positive_losses(gt_boxes, masks)), rel_tol=1e-6)


def test_masks_to_train_subsample_with_injected_generator_and_rescale():
    boxes = [[0.25, 0.25, 0.75, 0.75], [0.0, 0.0, 0.5, 0.25], [0.5, 0.125, 1.0, 1.0],
             [0.0, 0.0, 1.0, 1.0], [0.125, 0.5, 0.375, 0.875]]
    prototypes, coeffs, conf_t, idx_t, gt_boxes, masks = _single_image_case(5, boxes)
    masks[0, 0, 0] = masks[2, 0, 0] = masks[4, 0, 7] = 1
    per_positive = _per_positive_losses(gt_boxes, masks)
    assert len(set(round(value, 4) for value in per_positive)) == 5
    chosen = torch.randperm(5, generator=torch.Generator().manual_seed(7))[:2].tolist()
    loss = lincomb_mask_loss(prototypes, coeffs, conf_t, idx_t, gt_boxes, masks, torch.tensor([0]),
                             masks_to_train=2, generator=torch.Generator().manual_seed(7))
    expected = 5 / 2 * sum(per_positive[i] for i in chosen)
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)
    # Without subsampling (cap not exceeded) nothing is rescaled.
    full = lincomb_mask_loss(prototypes, coeffs, conf_t, idx_t, gt_boxes, masks, torch.tensor([0]),
                             masks_to_train=5)
    assert math.isclose(full.item(), sum(per_positive), rel_tol=1e-6)


def test_no_positives_gives_a_connected_zero():
    prototypes, coeffs, conf_t, idx_t, boxes, masks = _single_image_case(0, [[0.0, 0.0, 1.0, 1.0]])
    loss = lincomb_mask_loss(prototypes, coeffs, conf_t, idx_t, boxes, masks, torch.tensor([0]))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(coeffs.grad, torch.zeros_like(coeffs))
