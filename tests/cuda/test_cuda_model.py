"""The model on CUDA: the CPU's outputs in fp32 with TF32 off (1e-4 of their scale), and finite
outputs and losses under fp16 and bf16 autocast."""
import copy

import pytest
import torch

from tests.cuda.cuda_support import assert_close_to_scale, ieee_fp32, requires_cuda, targets_to
from tests.loss.criterion_batch import random_targets
from tests.modeling.test_model_fixture import make_tiny_yolact
from yolact.loss import YolactCriterion

pytestmark = requires_cuda


@pytest.fixture(scope="module")
def models_and_images():
    torch.manual_seed(0)
    model = make_tiny_yolact()
    model.train()
    model.set_bn_frozen(True)  # batch statistics would differ with nothing to compare
    images = torch.randn((2, 3, 550, 550), generator=torch.Generator().manual_seed(1))
    return model, copy.deepcopy(model).cuda(), images


def test_fp32_forward_equals_the_cpu(models_and_images):
    cpu_model, cuda_model, images = models_and_images
    with ieee_fp32(), torch.no_grad():
        expected = cpu_model(images)
        outputs = cuda_model(images.cuda())
    assert set(outputs) == set(expected)
    for name, value in expected.items():
        assert outputs[name].dtype == torch.float32
        assert_close_to_scale(name, outputs[name], value, 1e-4)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_forward_and_loss_are_finite(models_and_images, dtype):
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    _, cuda_model, images = models_and_images
    with torch.autocast("cuda", dtype=dtype):
        outputs = cuda_model(images.cuda())
        losses = YolactCriterion(num_classes=80)(outputs, targets_to(random_targets(2, 5), "cuda"))
    assert outputs["cls_logits"].dtype == dtype  # autocast did run the convolutions in half precision
    for name, value in outputs.items():
        assert torch.isfinite(value).all(), name
    for name, value in losses.items():
        assert value.dtype == torch.float32 and torch.isfinite(value), name
