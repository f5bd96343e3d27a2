"""The criterion on CUDA: the CPU's losses (1e-4 relative) and gradients (1e-3 of their scale),
and at most 5 host-device syncs per forward + backward (issue 13)."""
import pytest
import torch

from tests.cuda.cuda_support import (assert_close_to_scale, ieee_fp32, requires_cuda, sync_warnings, targets_to,
                                     to_cuda_leaves)
from tests.loss.criterion_batch import criterion_batch
from yolact.loss import YolactCriterion

pytestmark = requires_cuda

MAX_SYNCS = 5
GRADIENT_NAMES = ("cls_logits", "box_deltas", "mask_coeffs", "prototypes", "semseg_logits")


def _forward_backward(criterion, outputs, targets):
    losses = criterion(outputs, targets, generator=torch.Generator().manual_seed(0))
    sum(losses.values()).backward()
    return losses


@pytest.mark.parametrize("objects_per_image, masks_to_train", [(5, 100), (20, 100), (20, 50)])
def test_losses_and_gradients_equal_the_cpu(objects_per_image, masks_to_train):
    criterion = YolactCriterion(num_classes=80, masks_to_train=masks_to_train)
    cpu_outputs, targets = criterion_batch(4, objects_per_image)
    cuda_outputs = to_cuda_leaves(cpu_outputs)
    with ieee_fp32():
        cpu_losses = _forward_backward(criterion, cpu_outputs, targets)
        cuda_losses = _forward_backward(criterion, cuda_outputs, targets_to(targets, "cuda"))
    for name, expected in cpu_losses.items():
        assert cuda_losses[name].device == cuda_outputs["cls_logits"].device
        torch.testing.assert_close(cuda_losses[name].cpu(), expected.detach(), rtol=1e-4, atol=0.0, msg=name)
    for name in GRADIENT_NAMES:
        assert_close_to_scale(name, cuda_outputs[name].grad, cpu_outputs[name].grad, 1e-3)


@pytest.mark.parametrize("objects_per_image, masks_to_train", [(5, 100), (20, 100), (20, 50)])
def test_forward_and_backward_sync_at_most_five_times(objects_per_image, masks_to_train):
    criterion = YolactCriterion(num_classes=80, masks_to_train=masks_to_train)
    outputs, targets = criterion_batch(4, objects_per_image)
    targets = targets_to(targets, "cuda")  # as the trainer hands them over
    _forward_backward(criterion, to_cuda_leaves(outputs), targets)  # warm-up: lazy CUDA initialisation
    outputs = to_cuda_leaves(outputs)
    syncs = sync_warnings(lambda: _forward_backward(criterion, outputs, targets))
    print(f"{len(syncs)} syncs at {objects_per_image} objects per image, masks_to_train {masks_to_train}", *syncs,
          sep="\n")
    assert len(syncs) <= MAX_SYNCS, syncs
