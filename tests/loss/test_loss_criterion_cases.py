"""The criterion on tiny hand-made batches: empty images, half-empty batches, gradients."""
import math

import pytest
import torch

from yolact.loss import YolactCriterion

NUM_CLASSES = 3
# Four anchors in the corners of the image plus one at the centre, cxcywh.
ANCHORS = torch.tensor([
    [0.25, 0.25, 0.5, 0.5], [0.75, 0.25, 0.5, 0.5], [0.25, 0.75, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5],
    [0.5, 0.5, 0.25, 0.25],
])


def _outputs(num_images, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    def rand(*shape, activation=None):
        values = torch.randn(*shape, generator=generator, dtype=dtype)
        return (values if activation is None else activation(values)).requires_grad_()
    num_anchors = ANCHORS.shape[0]
    return {
        "cls_logits": rand(num_images, num_anchors, NUM_CLASSES + 1),
        "box_deltas": rand(num_images, num_anchors, 4),
        "mask_coeffs": rand(num_images, num_anchors, 4, activation=torch.tanh),
        "prototypes": rand(num_images, 8, 8, 4, activation=torch.relu),
        "anchors": ANCHORS.to(dtype),
        "semseg_logits": rand(num_images, NUM_CLASSES, 4, 4),
    }


def _empty_target():
    return {"boxes": torch.zeros((0, 4)), "labels": torch.zeros((0,), dtype=torch.int64),
            "masks": torch.zeros((0, 16, 16), dtype=torch.uint8), "crowd_boxes": torch.zeros((0, 4))}


def _one_object_target():
    masks = torch.zeros((1, 16, 16), dtype=torch.uint8)
    masks[0, 1:7, 9:15] = 1
    return {"boxes": torch.tensor([[0.5, 0.0, 1.0, 0.5]]), "labels": torch.tensor([2]), "masks": masks,
            "crowd_boxes": torch.zeros((0, 4))}


def _single(outputs, image):
    """The outputs of one image of the batch, as a batch of one."""
    return {k: (v if k == "anchors" else v[image:image + 1]) for k, v in outputs.items()}


def test_image_without_objects_gives_finite_losses_and_k_negatives():
    outputs = _outputs(1)
    for k in (0, 2, 4):
        criterion = YolactCriterion(num_classes=NUM_CLASSES, negatives_per_empty_image=k)
        losses = criterion(outputs, [_empty_target()])
        assert all(torch.isfinite(v) for v in losses.values())
        assert losses["loss_box"].item() == 0.0 and losses["loss_mask"].item() == 0.0
        background = -torch.log_softmax(outputs["cls_logits"][0].detach(), dim=-1)[:, 0]
        # No positives: the normaliser is 1; the k hardest anchors are the negatives.
        expected = background.sort(descending=True).values[:k].sum()
        torch.testing.assert_close(losses["loss_cls"], expected)
    expected_semseg = torch.nn.functional.softplus(outputs["semseg_logits"]).sum() / 16
    torch.testing.assert_close(losses["loss_semseg"], expected_semseg)
    sum(losses.values()).backward()
    assert torch.equal(outputs["box_deltas"].grad, torch.zeros_like(outputs["box_deltas"]))
    assert torch.isfinite(outputs["prototypes"].grad).all()


def test_half_empty_batch_equals_its_images():
    outputs = _outputs(2)
    criterion = YolactCriterion(num_classes=NUM_CLASSES, negatives_per_empty_image=2)
    batch = criterion(outputs, [_empty_target(), _one_object_target()])
    empty = criterion(_single(outputs, 0), [_empty_target()])
    full = criterion(_single(outputs, 1), [_one_object_target()])
    num_pos = (criterion.match([_one_object_target()], ANCHORS)[0] > 0).sum().item()
    assert num_pos == 1  # anchor 1 only (anchor 4 overlaps the box by IoU 1/19)
    # B, C, M are normalised by the positives of the batch, all in image 1; S by the batch size.
    torch.testing.assert_close(batch["loss_box"], full["loss_box"])
    torch.testing.assert_close(batch["loss_mask"], full["loss_mask"])
    torch.testing.assert_close(batch["loss_cls"], full["loss_cls"] + empty["loss_cls"] / num_pos)
    torch.testing.assert_close(batch["loss_semseg"], (full["loss_semseg"] + empty["loss_semseg"]) / 2)
    assert full["loss_mask"].item() > 0


def test_box_gradient_at_positives_matches_hand_computation():
    outputs = _outputs(1)
    criterion = YolactCriterion(num_classes=NUM_CLASSES)
    losses = criterion(outputs, [_one_object_target()])
    losses["loss_box"].backward()
    # The positive is anchor 1 = [0.5, 0, 1, 0.5] exactly the GT box: its target is 0, so
    # d/dd [1.5 * smooth_l1(d, 0) / 1] = 1.5 * clamp(d, -1, 1).
    deltas = outputs["box_deltas"].detach()[0, 1]
    expected = torch.zeros_like(outputs["box_deltas"])
    expected[0, 1] = 1.5 * deltas.clamp(-1, 1)
    torch.testing.assert_close(outputs["box_deltas"].grad, expected)
    value = 1.5 * sum(0.5 * d * d if abs(d) < 1 else abs(d) - 0.5 for d in deltas.tolist())
    assert math.isclose(losses["loss_box"].item(), value, rel_tol=1e-6)


def test_gradients_against_finite_differences():
    outputs = _outputs(2, dtype=torch.float64, seed=3)
    targets = [_one_object_target(), _empty_target()]
    criterion = YolactCriterion(num_classes=NUM_CLASSES, negatives_per_empty_image=2)
    names = ["cls_logits", "box_deltas", "mask_coeffs", "prototypes", "semseg_logits"]
    leaves = [outputs[name].detach().clone().requires_grad_() for name in names]

    def total(*inputs):
        return sum(criterion({**outputs, **dict(zip(names, inputs))}, targets).values())

    assert torch.autograd.gradcheck(total, leaves, eps=1e-6, atol=1e-6)


def test_half_precision_outputs_run_in_float32():
    outputs = {k: v.detach().half() for k, v in _outputs(1).items()}
    losses = YolactCriterion(num_classes=NUM_CLASSES)(outputs, [_one_object_target()])
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())


def test_generator_drives_the_mask_subset_and_rescale():
    outputs = _outputs(1)
    targets = [{**_one_object_target(), "boxes": torch.tensor([[0.0, 0.0, 1.0, 1.0]])}]
    def criterion(masks_to_train):
        return YolactCriterion(num_classes=NUM_CLASSES, masks_to_train=masks_to_train, pos_iou_threshold=0.2,
                               neg_iou_threshold=0.1)
    assert (criterion(1).match(targets, ANCHORS)[0] > 0).sum().item() == 4  # the four corner anchors
    full = criterion(4)(outputs, targets)["loss_mask"]
    subset_loss_by_choice = {}
    for seed in range(40):
        chosen = torch.randperm(4, generator=torch.Generator().manual_seed(seed))[0].item()
        loss = criterion(1)(outputs, targets, generator=torch.Generator().manual_seed(seed))["loss_mask"]
        subset_loss_by_choice.setdefault(chosen, loss)
        assert torch.equal(subset_loss_by_choice[chosen], loss)  # the same choice, the same loss
    # Each choice gives 4/1 x that positive's loss, so the four choices average to the full loss.
    assert len(subset_loss_by_choice) == 4
    torch.testing.assert_close(sum(subset_loss_by_choice.values()) / 4, full)


def test_class_count_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="expected 5, background first"):
        YolactCriterion(num_classes=4)(_outputs(1), [_one_object_target()])
