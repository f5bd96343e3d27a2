"""The YOLACT++ criterion on CUDA: the CPU's terms and gradients, and at most 5 host-device syncs
per forward + backward with the mask-IoU term (skipped without a CUDA device)."""
import copy

import pytest
import torch

from tests.cuda.cuda_support import (assert_close_to_scale, ieee_fp32, requires_cuda, sync_warnings,
                                     targets_to, to_cuda_leaves)
from tests.loss.criterion_batch import criterion_batch
from yolact.loss import YolactCriterion
from yolact.modeling.maskiou_head import MaskIoUHead

pytestmark = requires_cuda


def _plus_step(criterion, outputs, targets, head):
    losses = criterion(outputs, targets, generator=torch.Generator().manual_seed(0), maskiou_head=head)
    sum(losses.values()).backward()
    return losses


@pytest.mark.parametrize("masks_to_train", [100, 50])
def test_plus_criterion_on_cuda_equals_the_cpu_and_syncs_at_most_five_times(masks_to_train):
    criterion = YolactCriterion(num_classes=80, use_maskiou=True, masks_to_train=masks_to_train)
    cpu_outputs, targets = criterion_batch(4, 20)
    torch.manual_seed(0)
    cpu_head = MaskIoUHead(num_classes=80)  # yolact_plus's: 138 -> 1
    cuda_head, cuda_targets = copy.deepcopy(cpu_head).cuda(), targets_to(targets, "cuda")
    cuda_outputs = to_cuda_leaves(cpu_outputs)
    with ieee_fp32():
        cpu_losses = _plus_step(criterion, cpu_outputs, targets, cpu_head)
        cuda_losses = _plus_step(criterion, cuda_outputs, cuda_targets, cuda_head)
    for name, expected in cpu_losses.items():
        # a soft-mask pixel at 0.5 may binarise differently: the IoU targets move by <= 1/area
        tolerance = 1e-3 if name == "loss_maskiou" else 1e-4
        torch.testing.assert_close(cuda_losses[name].cpu(), expected.detach(), rtol=tolerance, atol=0.0,
                                   msg=name)
    for name in ("mask_coeffs", "prototypes"):
        assert_close_to_scale(name, cuda_outputs[name].grad, cpu_outputs[name].grad, 1e-3)
    # the head's gradients weigh each target: looser, for the same reason
    for (name, cpu_param), cuda_param in zip(cpu_head.named_parameters(), cuda_head.parameters()):
        assert_close_to_scale(f"maskiou_head.{name}", cuda_param.grad, cpu_param.grad, 1e-2)

    outputs = to_cuda_leaves(cpu_outputs)
    syncs = sync_warnings(lambda: _plus_step(criterion, outputs, cuda_targets, cuda_head))
    print(f"{len(syncs)} syncs, masks_to_train {masks_to_train}", *syncs, sep="\n")
    assert len(syncs) <= 5, syncs
