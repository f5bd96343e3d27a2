"""channels_last training on CPU with the k>1 convolution backward in NCHW: same values and
gradients as the plain convolution, same state_dict, same losses through train.py."""
import csv

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import train
from tests.engine.tiny_run import make_tiny_shapes, tiny_overrides
from tests.numerics import assert_within_rounding, gamma
from yolact.optimize.nchw_backward_conv import NCHWBackwardConv2d, to_channels_last_for_training
from yolact.modeling.yolact import make_yolact

CL = torch.channels_last


def grads_of(conv_like, x, grad_output):
    x = x.detach().clone().requires_grad_(True)
    for p in conv_like.parameters():
        p.grad = None
    out = conv_like(x)
    out.backward(grad_output)
    return out, x.grad, conv_like.weight.grad, conv_like.bias.grad


def exact_and_abs_terms(conv, x, grad_output):
    """(output, grad_input, grad_weight, grad_bias) of ``conv`` in float64, and the same maps
    applied to the absolute values of their operands (sum_i |x_i y_i| per element)."""
    geometry = (list(conv.stride), list(conv.padding), list(conv.dilation))

    def forward_and_backward(x, weight, bias, grad_output):
        grads = torch.ops.aten.convolution_backward(grad_output, x, weight, [weight.shape[0]], *geometry,
                                                    False, [0, 0], 1, [True, True, True])
        return (F.conv2d(x, weight, bias, *geometry), *grads)

    operands = [t.detach().double().contiguous() for t in (x, conv.weight, conv.bias, grad_output)]
    return forward_and_backward(*operands), forward_and_backward(*[t.abs() for t in operands])


@pytest.mark.parametrize("kernel, stride, padding, dilation", [(3, 1, 1, 1), (3, 2, 1, 1), (7, 2, 3, 1), (3, 1, 2, 2)])
def test_values_and_gradients_equal_the_plain_convolution(kernel, stride, padding, dilation):
    """Both backwards against float64, each element within the rounding bound of its reduction
    (tests/numerics.py): the weight and bias gradients sum N*H'*W' products, the input gradient
    at most C_out*k*k, the output C_in*k*k plus the bias. The NHWC and NCHW kernels sum in other
    orders, so the two float32 results differ from each other by rounding on any CPU."""
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, kernel, stride=stride, padding=padding, dilation=dilation).to(memory_format=CL)
    ours = NCHWBackwardConv2d(conv)
    x = torch.randn(2, 8, 21, 19).contiguous(memory_format=CL)
    grad_output = torch.randn_like(conv(x))
    out_plain, *grads_plain = grads_of(conv, x, grad_output)
    out_ours, *grads_ours = grads_of(ours, x, grad_output)
    assert torch.equal(out_ours, out_plain)  # the same forward kernel on the same operands
    exact, abs_terms = exact_and_abs_terms(conv, x, grad_output)
    positions = grad_output.shape[0] * grad_output.shape[2] * grad_output.shape[3]
    lengths = (8 * kernel * kernel + 1, 16 * kernel * kernel, positions, positions)
    names = ("output", "input", "weight", "bias")
    for name, expected, terms, length, mine, plain in zip(names, exact, abs_terms, lengths,
                                                          (out_ours, *grads_ours), (out_plain, *grads_plain)):
        assert mine.shape == plain.shape == expected.shape
        assert_within_rounding(f"{name} (NCHW backward)", mine, expected, terms, length)
        assert_within_rounding(f"{name} (channels_last backward)", plain, expected, terms, length)
    assert grads_ours[0].is_contiguous(memory_format=CL)


def test_plain_path_for_nchw_inputs_no_grad_and_autocast():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 4, 3, padding=1)
    ours = NCHWBackwardConv2d(conv)
    channels_last = torch.randn(1, 4, 8, 8).contiguous(memory_format=CL)
    assert ours._takes_nchw_backward(channels_last)
    assert not ours._takes_nchw_backward(torch.randn(1, 4, 8, 8))
    with torch.no_grad():
        assert not ours._takes_nchw_backward(channels_last)
        assert torch.equal(ours(channels_last), conv(channels_last))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not ours._takes_nchw_backward(channels_last)


def test_one_by_one_and_grouped_convolutions_are_refused():
    for conv in (nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 3, groups=2)):
        with pytest.raises(ValueError, match="larger than 1x1"):
            NCHWBackwardConv2d(conv)


def test_model_keeps_its_state_dict_and_gradients():
    """The whole model's gradients, plain channels_last against ours, in float32.

    Not against float64: the two float32 forwards are bit-identical, but a float64 forward can
    take other ReLU and max-pool decisions on near-ties, and live BatchNorm over two small
    images amplifies rounding (float32 differs from float64 by up to 14% in some backbone
    gradients, whatever the kernels). The two backwards differ only in the summation order of
    the k>1 convolutions, each of which is within gamma_n of its exact value (see
    test_values_and_gradients_equal_the_plain_convolution), so two of them differ by at most
    2 gamma_n. Along a backward path of at most one reduction per convolution (35 here), these
    differences add up, to first order and with default-init layers that neither grow nor
    shrink gradients much, to num_convs * 2 * gamma_n_max of the gradient's scale, n_max =
    2*48*48 (the stem's weight-gradient reduction): 2e-2. Measured: at most 7e-6, with AVX-512
    and AVX2 oneDNN and with ATen's default kernels; a wrong gradient is off by O(1)."""
    torch.manual_seed(0)
    plain = make_yolact(num_classes=3, block="bottleneck", layers=(1, 1, 1, 1), fpn_channels=16,
                        proto_channels=16, head_channels=16, num_prototypes=8).train()
    ours = copy.deepcopy(plain)
    plain.to(memory_format=CL)
    replaced = to_channels_last_for_training(ours, torch.device("cpu"))
    # stem 7x7, 4 block 3x3s, 3 FPN preds + 2 downsamples, 4 protonet 3x3s, 4 head convs
    assert replaced == 1 + 4 + 5 + 4 + 4
    assert list(ours.state_dict()) == list(plain.state_dict())
    images = torch.randn(2, 3, 96, 96).contiguous(memory_format=CL)
    for model in (plain, ours):
        outputs = model(images)
        sum(v.float().square().mean() for k, v in outputs.items() if k != "anchors").backward()
    num_convs = sum(isinstance(m, (nn.Conv2d, NCHWBackwardConv2d)) for m in ours.modules())
    bound = num_convs * 2 * gamma(2 * 48 * 48)
    for (name, p_plain), p_ours in zip(plain.named_parameters(), ours.parameters()):
        error = (p_ours.grad - p_plain.grad).abs().max()
        assert error <= bound * p_plain.grad.abs().max(), f"{name}: {error}"


def test_without_nchw_backward_the_model_is_only_put_in_channels_last():
    """``nchw_backward=False`` (train.channels_last "auto"): every convolution stays an nn.Conv2d,
    the 4-d weights are channels_last, and the state_dict keeps its keys and values."""
    torch.manual_seed(0)
    model = make_yolact(num_classes=3, block="basic", layers=(1, 1, 1, 1), fpn_channels=16,
                        proto_channels=16, head_channels=16, num_prototypes=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert to_channels_last_for_training(model, torch.device("cpu"), nchw_backward=False) == 0
    assert not any(isinstance(m, NCHWBackwardConv2d) for m in model.modules())
    kernels = [p for p in model.parameters() if p.dim() == 4 and p.shape[-1] > 1]
    assert kernels and all(p.is_contiguous(memory_format=CL) and not p.is_contiguous() for p in kernels)
    after = model.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], v) for k, v in before.items())


@pytest.mark.slow
def test_channels_last_training_gives_the_losses_of_contiguous_training(tmp_path):
    data_root = make_tiny_shapes(tmp_path / "shapes")
    losses = {}
    for channels_last in ("false", "true"):
        out = tmp_path / f"cl_{channels_last}"
        args = tiny_overrides(data_root, out, **{"train.channels_last": channels_last, "train.val_interval": 0})
        assert train.main(["--config", "shapes", "--name", "run", "--no-eval"] + args) == 0
        with open(out / "run" / "metrics.csv") as handle:
            losses[channels_last] = [float(row["loss_total"]) for row in csv.DictReader(handle)]
    assert len(losses["true"]) == 4
    assert losses["true"] == pytest.approx(losses["false"], rel=1e-4)
