"""DCNv2 on torchvision (yolact/modeling/deform_conv.py) and the backbone's deformable-block rule."""
import torch
import torch.nn.functional as F

from tests.plus.plus_tiny import assert_close_to_max
from yolact.modeling.backbone import ResNetBackbone, deformable_blocks
from yolact.modeling.deform_conv import ModulatedDeformConv2d

_UNIT_LAYER = "backbone.layers.3.0.conv2."


def test_dcn_unit_equals_the_reference(plus_dump, plus_state):
    unit = plus_dump["train"]["dcn_unit"]
    assert unit["layer"] + "." == _UNIT_LAYER
    dcn = ModulatedDeformConv2d(512, 512, 3, stride=2, padding=1)
    dcn.load_state_dict({key[len(_UNIT_LAYER):]: value for key, value in plus_state.items()
                         if key.startswith(_UNIT_LAYER)})
    assert dcn.conv_offset_mask.out_channels == 3 * 3 * 3
    with torch.no_grad():
        offset, mask = dcn.offsets_and_mask(unit["input"])
        output = dcn(unit["input"])
    assert_close_to_max("offset", offset, unit["offset"])
    assert_close_to_max("mask", mask, unit["mask"])
    assert_close_to_max("output", output, unit["output"])


def test_fresh_dcn_is_half_the_conv_plus_bias():
    torch.manual_seed(0)
    dcn = ModulatedDeformConv2d(4, 6, 3, stride=2, padding=1)
    with torch.no_grad():
        dcn.bias.uniform_(-1, 1)
        features = torch.randn(2, 4, 9, 9)
        expected = 0.5 * F.conv2d(features, dcn.weight, stride=2, padding=1) + dcn.bias[:, None, None]
        torch.testing.assert_close(dcn(features), expected, rtol=1e-5, atol=1e-5)


def test_integer_offset_on_one_tap_moves_that_tap_only():
    """Offset channel 2k is dy and 2k+1 dx of tap k = i*3 + j; mask logits are channels 18..26."""
    dcn = ModulatedDeformConv2d(1, 1, 3, stride=1, padding=1)
    with torch.no_grad():
        dcn.weight.zero_()
        dcn.weight[0, 0, 1, 1] = 1.0  # only the centre tap (k = 4)
        dcn.conv_offset_mask.bias[2 * 4 + 1] = 1.0  # dx = +1 on the centre tap
        dcn.conv_offset_mask.bias[18:] = 50.0  # mask = sigmoid(50) = 1
        features = torch.arange(25.0).reshape(1, 1, 5, 5)
        shifted = torch.cat([features[..., 1:], torch.zeros(1, 1, 5, 1)], dim=-1)
        torch.testing.assert_close(dcn(features), shifted)


def test_reference_dcn_layer_rule():
    # yolact_plus_base: ResNet-101 [3, 4, 23, 3], dcn_layers [0, 4, 23, 3], interval 3
    assert deformable_blocks(3, 0, 3) == [False] * 3
    assert deformable_blocks(4, 4, 3) == [True, False, False, True]
    assert [i for i, d in enumerate(deformable_blocks(23, 23, 3)) if d] == list(range(0, 23, 3))
    assert deformable_blocks(3, 3, 3) == [True, False, False]
    # yolact_plus_resnet50: [3, 4, 6, 3], dcn_layers [0, 4, 6, 3], interval 1: every block of stages 2-4
    assert deformable_blocks(6, 6, 1) == [True] * 6
    # fewer deformable layers than blocks: the first block is plain, the last ones deformable
    assert deformable_blocks(4, 2, 1) == [False, False, True, True]


def test_backbone_puts_dcn_on_conv2_with_the_block_stride():
    backbone = ResNetBackbone(layers=(1, 2, 1, 1), dcn_layers=(0, 2, 1, 1), dcn_interval=1)
    deformable = {name: module for name, module in backbone.named_modules()
                  if isinstance(module, ModulatedDeformConv2d)}
    assert sorted(deformable) == ["layer2.0.conv2", "layer2.1.conv2", "layer3.0.conv2", "layer4.0.conv2"]
    assert [deformable[name].stride for name in sorted(deformable)] == [2, 1, 2, 2]
    keys = [key for key in backbone.state_dict() if key.startswith("layer2.0.conv2")]
    assert keys == ["layer2.0.conv2.weight", "layer2.0.conv2.bias", "layer2.0.conv2.conv_offset_mask.weight",
                    "layer2.0.conv2.conv_offset_mask.bias"]
    assert [c.shape[1] for c in backbone(torch.zeros(1, 3, 64, 64))] == [512, 1024, 2048]
