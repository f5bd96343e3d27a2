"""channels_last training on CPU with the k>1 convolution backward in NCHW: same values and
gradients as the plain convolution, same state_dict, same losses through train.py."""
import csv

import pytest
import torch
from torch import nn

import train
from tests.engine.tiny_run import make_tiny_shapes, tiny_overrides
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


@pytest.mark.parametrize("kernel, stride, padding, dilation", [(3, 1, 1, 1), (3, 2, 1, 1), (7, 2, 3, 1), (3, 1, 2, 2)])
def test_values_and_gradients_equal_the_plain_convolution(kernel, stride, padding, dilation):
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, kernel, stride=stride, padding=padding, dilation=dilation).to(memory_format=CL)
    ours = NCHWBackwardConv2d(conv)
    x = torch.randn(2, 8, 21, 19).contiguous(memory_format=CL)
    grad_output = torch.randn_like(conv(x))
    out_plain, *grads_plain = grads_of(conv, x, grad_output)
    out_ours, *grads_ours = grads_of(ours, x, grad_output)
    assert torch.equal(out_ours, out_plain)
    for name, mine, plain in zip(("input", "weight", "bias"), grads_ours, grads_plain):
        assert mine.shape == plain.shape
        assert torch.allclose(mine, plain, rtol=1e-5, atol=1e-5), name
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
    torch.manual_seed(0)
    plain = make_yolact(num_classes=3, block="bottleneck", layers=(1, 1, 1, 1), fpn_channels=16,
                        proto_channels=16, head_channels=16, num_prototypes=8).train()
    ours = make_yolact(num_classes=3, block="bottleneck", layers=(1, 1, 1, 1), fpn_channels=16,
                       proto_channels=16, head_channels=16, num_prototypes=8).train()
    ours.load_state_dict(plain.state_dict())
    plain.to(memory_format=CL)
    replaced = to_channels_last_for_training(ours, torch.device("cpu"))
    # stem 7x7, 4 block 3x3s, 3 FPN preds + 2 downsamples, 4 protonet 3x3s, 4 head convs
    assert replaced == 1 + 4 + 5 + 4 + 4
    assert list(ours.state_dict()) == list(plain.state_dict())
    images = torch.randn(2, 3, 96, 96).contiguous(memory_format=CL)
    for model in (plain, ours):
        outputs = model(images)
        sum(v.float().square().mean() for k, v in outputs.items() if k != "anchors").backward()
    for (name, p_plain), p_ours in zip(plain.named_parameters(), ours.parameters()):
        error = (p_ours.grad - p_plain.grad).abs().max()  # rounding: the kernels sum in other orders
        assert error <= 1e-5 * p_plain.grad.abs().max(), f"{name}: {error}"


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
