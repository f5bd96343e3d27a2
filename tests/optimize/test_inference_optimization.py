"""optimize_for_inference: each rewrite against the plain model, and the whole against the reference."""
import copy

import pytest
import torch
from torch import nn

from tests.modeling.test_model_fixture import make_tiny_yolact
from tests.postprocess.test_postprocess_reference_detections import unpack_masks
from yolact.modeling.head import PredictionHead
from yolact.optimize.inference_optimization import fold_batchnorm, optimize_for_inference, use_winograd_convs
from yolact.modeling.reference_weights import load_model_weights
from yolact.optimize.winograd_conv import WinogradConv2d, winograd_available
from yolact.modeling.yolact import make_yolact
from yolact.postprocess import YolactPostProcessor

needs_nnpack = pytest.mark.skipif(not winograd_available(), reason="this PyTorch build has no NNPACK")


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Running statistics and affine parameters far from identity, so folding is really tested."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)


def small_model(block="bottleneck"):
    torch.manual_seed(0)
    model = make_yolact(num_classes=3, block=block, layers=(1, 1, 1, 1), fpn_channels=32, proto_channels=32,
                        head_channels=32, num_prototypes=8)
    randomise_batchnorm(model)
    return model.eval()


def assert_outputs_close(ours, expected, rtol=1e-4, atol=1e-4):
    assert set(ours) == set(expected)
    for key in expected:
        scale = expected[key].abs().max().item()
        error = (ours[key] - expected[key]).abs().max().item()
        assert error <= atol + rtol * scale, f"{key}: max error {error} at magnitude {scale}"


@pytest.mark.parametrize("block, expected_folds", [("bottleneck", 1 + 4 * 3 + 4), ("basic", 1 + 4 * 2 + 3)])
def test_fold_batchnorm_removes_every_batchnorm_and_keeps_outputs(block, expected_folds):
    model = small_model(block)
    images = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(images)
        folded = copy.deepcopy(model)
        assert fold_batchnorm(folded) == expected_folds
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        assert_outputs_close(folded(images), expected, rtol=1e-5, atol=1e-5)


def test_fold_batchnorm_refuses_a_training_model():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(small_model().train())


def test_fused_head_predictors_equal_the_three_convs_and_keep_the_state_dict():
    torch.manual_seed(0)
    head = PredictionHead(in_channels=16, hidden_channels=16, num_classes=4, num_prototypes=8).eval()
    features = [torch.randn(2, 16, s, s) for s in (12, 6, 3)]
    keys = set(head.state_dict())
    with torch.no_grad():
        expected = head(features)
        head.fuse_predictors()
        fused = head(features)
    assert head.fused_predictor.out_channels == 3 * 4 + 3 * 5 + 3 * 8
    for ours, reference in zip(fused, expected):
        assert ours.shape == reference.shape
        assert torch.allclose(ours, reference, rtol=1e-5, atol=1e-6)
    assert keys <= set(head.state_dict())


@needs_nnpack
@pytest.mark.parametrize("batch, channels_last, bias", [(1, False, True), (2, True, True), (1, False, False)])
def test_winograd_conv_equals_direct_convolution(batch, channels_last, bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(24, 64, kernel_size=3, padding=1, bias=bias)
    x = torch.randn(batch, 24, 50, 56)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    winograd = WinogradConv2d(conv, min_in_channels=8)
    with torch.no_grad():
        assert winograd.uses_winograd(x)
        expected = conv(x)
        ours = winograd(x)
    assert ours.shape == expected.shape
    assert (ours - expected).abs().max() <= 1e-5 * expected.abs().max()


@needs_nnpack
def test_winograd_conv_falls_back_to_the_direct_path_exactly():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 64, kernel_size=3, padding=1)
    winograd = WinogradConv2d(conv, min_in_channels=8)
    wide_map = torch.randn(1, 8, 50, 50)
    small = torch.randn(1, 8, 20, 20)  # map under 48x48
    conv_double = nn.Conv2d(8, 64, kernel_size=3, padding=1).double()
    as_double = wide_map.double()
    narrow = WinogradConv2d(nn.Conv2d(8, 16, kernel_size=3, padding=1), min_in_channels=8)  # under 64 outputs
    with torch.no_grad():
        assert winograd.uses_winograd(wide_map)
        assert not WinogradConv2d(conv).uses_winograd(wide_map)  # under 256 inputs
        assert not winograd.uses_winograd(small) and not narrow.uses_winograd(wide_map)
        assert not WinogradConv2d(conv_double, min_in_channels=8).uses_winograd(as_double)
        assert torch.equal(winograd(small), conv(small))
        assert torch.equal(WinogradConv2d(conv_double, min_in_channels=8)(as_double), conv_double(as_double))
    needs_grad = wide_map.clone().requires_grad_(True)
    assert not winograd.uses_winograd(needs_grad)
    out = winograd(needs_grad)
    out.sum().backward()
    assert needs_grad.grad is not None and torch.equal(out, conv(needs_grad))


def test_winograd_conv_refuses_strided_convolutions():
    with pytest.raises(ValueError, match="3x3 stride-1"):
        WinogradConv2d(nn.Conv2d(8, 8, kernel_size=3, stride=2, padding=1))


@needs_nnpack
def test_optimized_tiny_model_gives_the_reference_detections(reference_state, reference_dump, reference_dir):
    """Every rewrite at once (the 64-channel P3 convs at 69x69 run as Winograd) on the reference's
    sharpened tiny model: the final detections at 640x480 are the reference's."""
    sharp_delta = torch.load(reference_dir / "yolact_tiny_sharp_delta.pth", weights_only=True)
    torch.manual_seed(0)
    model = make_tiny_yolact()
    assert load_model_weights(model, {**reference_state, **sharp_delta}) == []
    model.eval()
    counts = optimize_for_inference(model, device=torch.device("cpu"), winograd=False)
    assert counts == {"folded_batchnorms": 17, "fused_heads": 1, "winograd_convs": 0, "channels_last": 1}
    # the tiny model is 64 channels wide: lower the channel bar so that its wide maps take
    # Winograd. Replaced: the stage-1 3x3, 3 FPN outputs, 4 protonet convs, the head's upfeature,
    # fused predictor, class and coefficient convs (its 12-channel box conv is too narrow).
    assert use_winograd_convs(model, min_in_channels=64) == 12
    images = reference_dump["input"]["images"]
    taken = []
    for module in model.modules():
        if isinstance(module, WinogradConv2d):
            module.register_forward_pre_hook(lambda m, args: taken.append(m.uses_winograd(args[0])))
    with torch.no_grad():
        outputs = model(images)
    # at 138x138 the stage-1 3x3 and the last protonet conv, at 69x69 (P3) the FPN output, 3
    # protonet convs, the upfeature and the fused predictor; P4-P7 are under 48x48
    assert sum(taken) == 8
    expected_outputs = reference_dump["eval_sharp"]["raw"]
    assert torch.allclose(outputs["cls_logits"].softmax(dim=-1), expected_outputs["conf"], rtol=1e-4, atol=1e-5)
    assert torch.allclose(outputs["prototypes"], expected_outputs["proto"], rtol=1e-4, atol=1e-5)
    found = YolactPostProcessor()(outputs, [(480, 640)] * len(outputs["prototypes"]))
    for ours, expected in zip(found, reference_dump["eval_sharp"]["post_640x480"]):
        assert torch.equal(ours["labels"], expected["classes"])
        assert torch.allclose(ours["scores"], expected["scores"], rtol=0, atol=1e-5)
        assert (ours["boxes"] - expected["boxes"]).abs().max() <= 1
        reference_masks = unpack_masks(expected["masks"])
        differing = (ours["masks"].numpy() != reference_masks).reshape(len(reference_masks), -1).mean(axis=1)
        assert differing.max() <= 0.005


@needs_nnpack
@pytest.mark.parametrize("capability, device, expected", [
    ("AVX2", "cpu", {"winograd_convs": 11, "channels_last": 1}),
    ("AVX512", "cpu", {"winograd_convs": 0, "channels_last": 1}),
    ("AVX2", "meta", {"winograd_convs": 0, "channels_last": 0}),
])
def test_default_rewrites_per_device_and_cpu(monkeypatch, capability, device, expected):
    """Winograd by default on AVX2 CPUs only (where it was measured), channels_last on CPUs.

    A 256-wide model: Winograd-eligible are the 3 FPN output convs, the 4 protonet 3x3s and the
    head's upfeature, class, coefficient and fused convs (11); not the 12-channel box conv nor
    the backbone's narrow or strided 3x3s."""
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    torch.manual_seed(0)
    model = make_yolact(num_classes=80, block="bottleneck", layers=(1, 1, 1, 1), fpn_channels=256,
                        proto_channels=256, head_channels=256, num_prototypes=32).eval()
    counts = optimize_for_inference(model, device=torch.device(device))
    assert {key: counts[key] for key in expected} == expected
    assert counts["folded_batchnorms"] == 17 and counts["fused_heads"] == 1
