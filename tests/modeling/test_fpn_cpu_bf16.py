"""The FPN trains right under CPU bf16 autocast when P6 is one pixel (inputs of 64 px and less).

oneDNN's bf16 weight gradient of a strided, padded conv on a one-pixel-wide input reads unwritten
memory on CPUs with AVX-512-BF16 or AMX (yolact/modeling/fpn.py ``_downsample``). Freed memory is
filled with NaN before each backward so that such a read shows; on CPUs that emulate bf16 the test
holds as well, and checks the same contract.
"""
import pytest
import torch

from yolact.modeling.fpn import FPN


def _features(generator: torch.Generator, size: int):
    """C3, C4, C5 of a ``size`` px input: [2, 16, size / 8, ...], [2, 16, size / 16, ...], [2, 16, size / 32, ...]."""
    return [torch.randn(2, 16, size // stride, size // stride, generator=generator) for stride in (8, 16, 32)]


def _gradients(fpn: FPN, features, level_weights, amp: bool):
    """Gradients of every FPN parameter for sum_l <P_l, w_l>, in bf16 autocast or float32."""
    fpn.zero_grad(set_to_none=True)
    dirt = torch.full((1 << 18,), float("nan"))  # freed memory that a read of unwritten memory would see
    del dirt
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        levels = fpn(features)
    loss = sum((level.float() * weight).sum() for level, weight in zip(levels, level_weights))
    loss.backward()
    return {name: parameter.grad.clone() for name, parameter in fpn.named_parameters()}


@pytest.mark.parametrize("size", [64, 32])
def test_bf16_gradients_of_one_pixel_levels_match_float32(size):
    generator = torch.Generator().manual_seed(0)
    fpn = FPN(in_channels=(16, 16, 16), out_channels=16)
    features = _features(generator, size)
    with torch.no_grad():
        shapes = [level.shape for level in fpn(features)]
    assert shapes[3][-2:] == (1, 1)  # P6 is one pixel: P7's conv takes a 1 x 1 input
    level_weights = [torch.randn(shape, generator=generator) for shape in shapes]
    reference = _gradients(fpn, features, level_weights, amp=False)
    for _ in range(10):  # the faulty kernel failed in nearly every backward; ten leave no doubt
        bf16 = _gradients(fpn, features, level_weights, amp=True)
        for name in ("downsample_convs.0.weight", "downsample_convs.1.weight", "downsample_convs.1.bias"):
            scale = reference[name].abs().max()
            assert torch.isfinite(bf16[name]).all(), name
            assert (bf16[name] - reference[name]).abs().max() <= 0.05 * scale, name


def test_one_pixel_downsample_runs_in_float32_under_cpu_autocast_and_as_before_elsewhere():
    generator = torch.Generator().manual_seed(1)
    fpn = FPN(in_channels=(16, 16, 16), out_channels=16)
    with torch.no_grad():
        fp32_levels = fpn(_features(generator, 64))
        generator.manual_seed(1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16_levels = fpn(_features(generator, 64))
    assert [level.dtype for level in bf16_levels] == [torch.bfloat16] * 4 + [torch.float32]  # P6 2 x 2, P7 1 x 1
    torch.testing.assert_close(bf16_levels[4], fp32_levels[4], rtol=0.05, atol=0.05)
