"""Semantic segmentation loss: per-class union targets and the summed BCE (SPEC §5)."""
import torch
import torch.nn.functional as F

from yolact.loss import semantic_segmentation_loss, semantic_segmentation_targets


def test_targets_are_the_union_of_each_class_per_image():
    masks = torch.zeros((3, 2, 2))
    masks[0, 0, 0] = masks[1, 0, 0] = masks[1, 1, 1] = 1  # image 0, class 2 twice (overlapping)
    masks[2, 0, 1] = 1  # image 1, class 0
    targets = semantic_segmentation_targets(masks, torch.tensor([2, 2, 0]), torch.tensor([0, 0, 1]),
                                            num_images=3, num_classes=3)
    expected = torch.zeros((3, 3, 2, 2))
    expected[0, 2] = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # union, not a sum of 2 at (0, 0)
    expected[1, 0, 0, 1] = 1
    assert torch.equal(targets, expected)  # image 2 has no objects: all zero


def test_loss_is_summed_bce_with_logits_over_the_logit_area():
    logits = torch.linspace(-3, 3, 2 * 3 * 4 * 5).view(2, 3, 4, 5)
    masks = torch.zeros((1, 4, 5))
    masks[0, 1:3, 2:4] = 1
    loss = semantic_segmentation_loss(logits, masks, torch.tensor([1]), torch.tensor([1]))
    targets = torch.zeros_like(logits)
    targets[1, 1, 1:3, 2:4] = 1
    # softplus(x) - x * t is BCE with logits.
    expected = (F.softplus(logits) - logits * targets).sum() / 20
    torch.testing.assert_close(loss, expected)
