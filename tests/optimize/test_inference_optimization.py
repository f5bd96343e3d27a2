"""optimize_for_inference: each rewrite against the plain model, and the whole against the reference."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.modeling.test_model_fixture import tiny_model_for
from tests.numerics import assert_within_rounding
from tests.postprocess.test_postprocess_reference_detections import assert_detections_equal
from yolact.modeling.head import PredictionHead
from yolact.optimize import inference_optimization
from yolact.optimize.inference_optimization import (WINOGRAD_FASTER, fold_batchnorm, optimize_for_inference,
                                                    use_winograd_convs)
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


def conv_exact_and_abs_terms(conv: nn.Conv2d, x: torch.Tensor):
    """float64 conv(x) and the same conv on absolute values (sum |x w| + |b| per output)."""
    operands = [x.double(), conv.weight.double(), conv.bias.double()]
    exact = F.conv2d(*operands, stride=conv.stride, padding=conv.padding)
    return exact, F.conv2d(*[t.abs() for t in operands], stride=conv.stride, padding=conv.padding)


def test_fused_head_predictors_equal_the_three_convs_and_keep_the_state_dict():
    """Each output channel of the stacked conv is the same reduction as in its own conv (16*9
    products and the bias), blocked differently: both within gamma_n of float64."""
    torch.manual_seed(0)
    head = PredictionHead(in_channels=16, hidden_channels=16, num_classes=4, num_prototypes=8).eval()
    features = [torch.randn(2, 16, s, s) for s in (12, 6, 3)]
    hidden = torch.relu(torch.randn(2, 16, 12, 12))
    keys = set(head.state_dict())
    with torch.no_grad():
        expected, separate = head(features), head._predict(hidden)
        exact = [conv_exact_and_abs_terms(layer, hidden) for layer in (head.box_layer, head.cls_layer,
                                                                        head.coeff_layer)]
        head.fuse_predictors()
        fused_outputs, fused = head(features), head._predict(hidden)
    assert head.fused_predictor.out_channels == 3 * 4 + 3 * 5 + 3 * 8
    for name, ours, plain, (reference, abs_terms) in zip(("box", "class", "coeff"), fused, separate, exact):
        assert_within_rounding(f"{name} (fused)", ours, reference, abs_terms, 16 * 9 + 1)
        assert_within_rounding(f"{name} (separate)", plain, reference, abs_terms, 16 * 9 + 1)
    for ours, plain in zip(fused_outputs, expected):  # and the whole head, through tanh and reshapes
        assert ours.shape == plain.shape and torch.allclose(ours, plain, rtol=1e-5, atol=1e-6)
    assert keys <= set(head.state_dict())


def test_folded_batchnorm_is_the_conv_then_batchnorm_within_rounding():
    """One folded pair against float64 conv -> BatchNorm. Folding rounds each weight once more,
    W * gamma / sqrt(var + eps) (add, sqrt, divide, multiply: 4 roundings of a factor within u
    each, relative to |W'|), and the bias (b - mean) * s + beta (3 more): with the reduction's
    gamma_n, 8 u of sum |W' x| + |mean s| + |beta| covers them. The unfolded float32 pair rounds
    conv(x), then subtracts, scales and shifts: the same bound."""
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(16, 24, 3, padding=1, bias=False), nn.BatchNorm2d(24)
    model = nn.Sequential(conv, bn)
    randomise_batchnorm(model)
    model.eval()
    x = torch.randn(2, 16, 20, 20)
    with torch.no_grad():
        unfolded = model(x)
        exact = copy.deepcopy(model).double()(x.double())
        scale = bn.weight.double() / (bn.running_var.double() + bn.eps).sqrt()           # [24]
        abs_conv = F.conv2d(x.double().abs(), conv.weight.double().abs(), padding=1)
        abs_terms = (abs_conv * scale.abs()[:, None, None]
                     + ((bn.running_mean.double() * scale).abs() + bn.bias.double().abs())[:, None, None])
        assert fold_batchnorm(model) == 1
        folded = model(x)
    assert isinstance(model[1], nn.Identity)
    assert_within_rounding("folded", folded, exact, abs_terms, 16 * 9 + 1, extra_roundings=8)
    assert_within_rounding("unfolded", unfolded, exact, abs_terms, 16 * 9 + 1, extra_roundings=8)


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
        direct, ours = conv(x), winograd(x)
        operands = [t.double() if t is not None else None for t in (x, conv.weight, conv.bias)]
        exact = F.conv2d(*operands, padding=1)
        abs_terms = F.conv2d(*[t.abs() if t is not None else None for t in operands], padding=1)
    # Both against float64. The direct convolution is a reduction of 24*9 products (+ bias):
    # within gamma_n. Winograd F(6x6, 3x3) also rounds in its transforms, whose entries reach
    # 5.25 (input), 2^5 (output) and 1/90 (kernel): NNPACK's error reaches 76 u * sum|x w| here
    # (8e-6 of the output's scale, as cuDNN's Winograd on GPUs), so the stated allowance is
    # 2^10 u on top of gamma_n; a wrong tile or padding is off by O(1).
    length = 24 * 9 + int(bias)
    assert ours.shape == direct.shape == exact.shape
    assert_within_rounding("direct", direct, exact, abs_terms, length)
    assert_within_rounding("winograd", ours, exact, abs_terms, length, extra_roundings=2 ** 10)


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


def test_optimized_tiny_model_gives_the_reference_detections(reference):
    """Every rewrite at once on the reference's tiny model: the final detections pasted onto the
    larger original are the reference's. Winograd is lowered to 64 channels and the P3 size so
    that the tiny model's wide maps take it (where this PyTorch has NNPACK): the stage-1 3x3 and
    the last protonet conv at twice P3's size; at P3 the FPN output, 3 protonet convs, the
    upfeature and the fused predictor."""
    model = tiny_model_for(reference, reference.eval_state).eval()
    counts = optimize_for_inference(model, device=torch.device("cpu"), winograd=False)
    assert counts == {"folded_batchnorms": 17, "fused_heads": 1, "winograd_convs": 0, "channels_last": 1}
    p3_size = reference.input_size // 8 + (reference.input_size % 8 > 0)
    replaced = use_winograd_convs(model, min_in_channels=64, min_spatial_size=p3_size)
    # the stage-1 3x3, 3 FPN outputs, 4 protonet convs, the head's upfeature, fused predictor,
    # class and coefficient convs (its 12-channel box conv is too narrow)
    assert replaced == (12 if winograd_available() else 0)
    taken = []
    for module in model.modules():
        if isinstance(module, WinogradConv2d):
            module.register_forward_pre_hook(lambda m, args: taken.append(m.uses_winograd(args[0])))
    with torch.no_grad():
        outputs = model(reference.dump["input"]["images"])
    assert sum(taken) == (8 if winograd_available() else 0)
    expected_outputs = reference.eval_raw
    assert torch.allclose(outputs["cls_logits"].softmax(dim=-1), expected_outputs["conf"], rtol=1e-4, atol=1e-5)
    assert torch.allclose(outputs["prototypes"], expected_outputs["proto"], rtol=1e-4, atol=1e-5)
    key = [key for key in reference.post_sizes if key != "post"][0]
    found = YolactPostProcessor()(outputs, [reference.post_sizes[key]] * len(outputs["prototypes"]))
    assert_detections_equal(found, reference.dump["eval_sharp"][key], score_atol=1e-5)


AVX2_FLAGS = frozenset({"sse2", "avx", "avx2", "fma"})
AVX512_FLAGS = AVX2_FLAGS | {"avx512f", "avx512bw", "avx512vl", "avx512_bf16"}
WINOGRAD_CONVS = {isa: 11 if faster else 0 for isa, faster in WINOGRAD_FASTER.items()}


@needs_nnpack
@pytest.mark.parametrize("flags, onednn_cap, device, expected", [
    (AVX2_FLAGS, "", "cpu", {"winograd_convs": WINOGRAD_CONVS["avx2"], "channels_last": 1}),
    (AVX512_FLAGS, "", "cpu", {"winograd_convs": WINOGRAD_CONVS["avx512"], "channels_last": 1}),
    (AVX512_FLAGS, "AVX2", "cpu", {"winograd_convs": WINOGRAD_CONVS["avx2"], "channels_last": 1}),
    (None, "", "cpu", {"winograd_convs": 0, "channels_last": 1}),  # no flags to read: unmeasured
    (AVX2_FLAGS, "", "meta", {"winograd_convs": 0, "channels_last": 0}),
])
def test_default_rewrites_per_device_and_cpu(monkeypatch, flags, onednn_cap, device, expected):
    """Winograd by default where the table of measurements says it is faster, from the CPU's
    flags and oneDNN's ISA cap (not ATen's capability); channels_last on CPUs.

    A 256-wide model: Winograd-eligible are the 3 FPN output convs, the 4 protonet 3x3s and the
    head's upfeature, class, coefficient and fused convs (11); not the 12-channel box conv nor
    the backbone's narrow or strided 3x3s."""
    monkeypatch.setattr(inference_optimization, "cpu_flags", lambda: flags)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "DEFAULT")  # not read
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", onednn_cap)
    torch.manual_seed(0)
    model = make_yolact(num_classes=80, block="bottleneck", layers=(1, 1, 1, 1), fpn_channels=256,
                        proto_channels=256, head_channels=256, num_prototypes=32).eval()
    counts = optimize_for_inference(model, device=torch.device(device))
    assert {key: counts[key] for key in expected} == expected
    assert counts["folded_batchnorms"] == 17 and counts["fused_heads"] == 1
