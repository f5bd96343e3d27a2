"""The composed model: output contract, dense-head layout, init, BN freezing, dtype/device."""
import math

import pytest
import torch
from torch import nn

from yolact.modeling.head import flatten_dense_predictions
from yolact.modeling.yolact import make_yolact


def _small_model(**overrides):
    torch.manual_seed(0)
    kwargs = dict(num_classes=5, layers=(1, 1, 1, 1), fpn_channels=16, proto_channels=16, head_channels=16,
                  num_prototypes=4)
    kwargs.update(overrides)
    return make_yolact(**kwargs)


def test_dense_reshape_channel_and_flat_index_layout():
    num_anchors, depth, height, width = 3, 5, 2, 4
    a, d, y, x = torch.meshgrid(torch.arange(num_anchors), torch.arange(depth), torch.arange(height),
                                torch.arange(width), indexing="ij")
    code = a * 1000 + d * 100 + y * 10 + x  # [A, D, H, W]: channel a*D + d after the reshape below
    dense = code.reshape(1, num_anchors * depth, height, width).float()
    flat = flatten_dense_predictions(dense, depth)
    assert flat.shape == (1, height * width * num_anchors, depth)
    for yy in range(height):
        for xx in range(width):
            for aa in range(num_anchors):
                expected = torch.tensor([aa * 1000 + dd * 100 + yy * 10 + xx for dd in range(depth)]).float()
                assert torch.equal(flat[0, (yy * width + xx) * num_anchors + aa], expected)


def test_output_contract_train_and_eval():
    model = _small_model()
    images = torch.randn(2, 3, 64, 64)
    # 64 px: C3 8, C4 4, C5 2, P6 1, P7 1; prototypes 16x16
    num_anchors = 3 * (8 * 8 + 4 * 4 + 2 * 2 + 1 + 1)
    outputs = model.train()(images)
    shapes = {key: tuple(value.shape) for key, value in outputs.items()}
    assert shapes == {"cls_logits": (2, num_anchors, 6), "box_deltas": (2, num_anchors, 4),
                      "mask_coeffs": (2, num_anchors, 4), "prototypes": (2, 16, 16, 4),
                      "anchors": (num_anchors, 4), "semseg_logits": (2, 5, 8, 8)}
    assert outputs["mask_coeffs"].abs().max() <= 1 and outputs["prototypes"].min() >= 0
    # with BN frozen, eval returns the same raw values minus the semantic logits (no softmax)
    model.set_bn_frozen(True)
    with torch.no_grad():
        frozen_train_outputs = model.train()(images)
        eval_outputs = model.eval()(images)
    assert set(eval_outputs) == set(outputs) - {"semseg_logits"}
    for key, value in eval_outputs.items():
        assert torch.equal(value, frozen_train_outputs[key]), key


def test_non_backbone_convs_are_xavier_with_zero_bias():
    model = _small_model()
    non_backbone = [(n, m) for n, m in model.named_modules()
                    if isinstance(m, nn.Conv2d) and not n.startswith("backbone.")]
    assert len(non_backbone) == 3 + 3 + 2 + 5 + 4 + 1  # lateral, output, downsample, protonet, head, semseg
    for name, conv in non_backbone:
        fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
        fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.5 * bound, name
        assert torch.count_nonzero(conv.bias) == 0, name


def test_bn_freeze_persists_through_train_and_keeps_statistics():
    model = _small_model()
    batch_norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    model.set_bn_frozen(True)
    model.eval().train()  # the reference re-freezes BN whenever the model goes to train mode
    assert model.training and all(not bn.training for bn in batch_norms)
    assert all(not bn.weight.requires_grad and not bn.bias.requires_grad for bn in batch_norms)
    before = batch_norms[0].running_mean.clone()
    model(torch.randn(1, 3, 64, 64))
    assert torch.equal(batch_norms[0].running_mean, before)
    model.set_bn_frozen(False)
    assert all(bn.training and bn.weight.requires_grad for bn in batch_norms)
    model(torch.randn(1, 3, 64, 64))
    assert not torch.equal(batch_norms[0].running_mean, before)


def test_anchors_and_outputs_follow_dtype_and_device():
    model = _small_model().double().eval()
    with torch.no_grad():
        outputs = model(torch.randn(1, 3, 64, 64, dtype=torch.float64))
    assert all(value.dtype == torch.float64 for value in outputs.values())
    float_anchors = _small_model().eval()(torch.randn(1, 3, 64, 64))["anchors"]
    assert torch.equal(outputs["anchors"].float(), float_anchors)
    meta_outputs = _small_model().to("meta").eval()(torch.empty(1, 3, 64, 64, device="meta"))
    assert all(value.device.type == "meta" for value in meta_outputs.values())


class _TinyBackbone(nn.Module):
    """A stand-in backbone: three strided convs, C3/C4/C5 of 8, 12 and 16 channels."""

    def __init__(self):
        super().__init__()
        self.out_channels = (8, 12, 16)
        self.stem = nn.Conv2d(3, 8, 3, stride=8, padding=1)
        self.c4 = nn.Conv2d(8, 12, 3, stride=2, padding=1)
        self.c5 = nn.Conv2d(12, 16, 3, stride=2, padding=1)

    def forward(self, images):
        c3 = self.stem(images)
        c4 = self.c4(c3)
        return [c3, c4, self.c5(c4)]


def test_any_backbone_with_out_channels_plugs_in():
    model = _small_model(backbone=_TinyBackbone())
    outputs = model.eval()(torch.randn(1, 3, 64, 64))
    assert outputs["cls_logits"].shape == (1, 3 * (8 * 8 + 4 * 4 + 2 * 2 + 1 + 1), 6)
    assert [conv.in_channels for conv in model.fpn.lateral_convs] == [8, 12, 16]


def test_backbone_names_map_to_builders():
    from yolact.errors import YolactError
    from yolact.modeling.backbone import BACKBONES, ResNetBackbone, build_backbone

    assert sorted(BACKBONES) == ["basic", "bottleneck"]
    resnet = build_backbone("basic", layers=(1, 1, 1, 1), pretrained=None)
    assert isinstance(resnet, ResNetBackbone) and resnet.out_channels == (128, 256, 512)
    with pytest.raises(YolactError, match=r"^unknown backbone 'dcn': expected one of \['basic', 'bottleneck'\]$"):
        build_backbone("dcn", layers=(1, 1, 1, 1), pretrained=None)
