"""The YOLACT++ configs: the reference's plus models built from YAML, their checkpoint layout, and
the small shapes config end to end through the criterion and the post-processor."""
import pytest
import torch

from yolact.build import build_criterion, build_model, build_postprocessor, with_num_classes
from yolact.config import load_config
from yolact.modeling.deform_conv import ModulatedDeformConv2d
from yolact.modeling.maskiou_head import post_forward_heads
from yolact.modeling.reference_weights import (from_reference_state_dict, load_model_weights,
                                               to_reference_state_dict)


def _deformable(model):
    return [name for name, module in model.named_modules() if isinstance(module, ModulatedDeformConv2d)]


@pytest.mark.parametrize("name,layers,dcn_blocks", [
    # R101: stage 2 blocks 0 and 3, stage 3 blocks 0, 3, ..., 21, stage 4 block 0
    ("yolact_plus_base", (3, 4, 23, 3), ["layer2.0", "layer2.3", *[f"layer3.{i}" for i in range(0, 23, 3)],
                                         "layer4.0"]),
    ("yolact_plus_resnet50", (3, 4, 6, 3), [*[f"layer2.{i}" for i in range(4)],
                                            *[f"layer3.{i}" for i in range(6)],
                                            *[f"layer4.{i}" for i in range(3)]]),
])
def test_plus_configs_build_the_reference_models(name, layers, dcn_blocks):
    config = with_num_classes(load_config(name), 80)
    assert config.model.backbone.layers == layers
    assert (config.model.anchor_octave_scales, config.model.use_square_anchors) == (3, False)
    assert config.model.maskiou_channels == (8, 16, 32, 64, 128) and config.postprocess.rescore_mask
    torch.manual_seed(0)
    model = build_model(config, pretrained=None)
    assert _deformable(model) == [f"backbone.{block}.conv2" for block in dcn_blocks]
    assert model.anchor_generator.num_anchors_per_cell == 9
    assert model.anchor_generator.scales_per_level[0] == (24.0, 24 * 2 ** (1 / 3), 24 * 2 ** (2 / 3))
    # the released checkpoint's layout, with random weights: loads strictly and exports back exactly
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.uniform_(-1, 1)
    reference = to_reference_state_dict(model.state_dict())
    assert "backbone.layers.2.21.conv2.conv_offset_mask.weight" in reference or name.endswith("resnet50")
    assert reference["maskiou_net.maskiou_net.10.weight"].shape == (80, 128, 1, 1)
    assert reference["backbone.layers.1.0.conv2.conv_offset_mask.weight"].shape == (27, 128, 3, 3)
    fresh = build_model(config, pretrained=None)
    assert load_model_weights(fresh, reference) == []
    exported = to_reference_state_dict(fresh.state_dict())
    assert list(exported) == list(reference)
    assert all(torch.equal(exported[key], reference[key]) for key in reference)
    assert from_reference_state_dict(reference).keys() == model.state_dict().keys()


def test_maskiou_head_of_550_reduces_to_one_pixel():
    model = build_model(with_num_classes(load_config("yolact_plus_resnet50"), 80), pretrained=None)
    assert model.maskiou_head(torch.rand(2, 1, 138, 138)).shape == (2, 80)


def _shapes_plus(num_classes=3):
    torch.manual_seed(0)
    config = with_num_classes(load_config("shapes_plus"), num_classes)
    return config, build_model(config, pretrained=None)


def test_shapes_plus_trains_and_rescores():
    config, model = _shapes_plus()
    images = torch.randn(2, 3, 160, 160)
    masks = torch.zeros(1, 160, 160, dtype=torch.uint8)
    masks[0, 40:120, 30:100] = 1
    targets = [{"boxes": torch.tensor([[30 / 160, 40 / 160, 100 / 160, 120 / 160]]),
                "labels": torch.tensor([1]), "masks": masks},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
                "masks": torch.zeros(0, 160, 160, dtype=torch.uint8)}]
    losses = build_criterion(config)(model.train()(images), targets, **post_forward_heads(model))
    assert set(losses) == {"loss_cls", "loss_box", "loss_mask", "loss_semseg", "loss_maskiou"}
    assert all(torch.isfinite(value) for value in losses.values()) and losses["loss_maskiou"] > 0
    sum(losses.values()).backward()
    assert all(param.grad is not None for param in model.maskiou_head.parameters())
    offset_grad = model.backbone.layer4[0].conv2.conv_offset_mask.weight.grad
    assert offset_grad is not None
    model.eval()
    with torch.no_grad():
        found = build_postprocessor(config)(model(images), [(100, 120), (160, 160)],
                                            maskiou_head=model.maskiou_head)
    for detections in found:
        assert detections["mask_scores"].shape == detections["scores"].shape
        assert torch.all(detections["mask_scores"] >= 0)  # the predicted IoU is >= 0 (final ReLU)


def test_images_without_objects_give_a_zero_maskiou_term_in_the_graph():
    config, model = _shapes_plus()
    targets = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
                "masks": torch.zeros(0, 160, 160, dtype=torch.uint8)}]
    losses = build_criterion(config)(model.train()(torch.randn(1, 3, 160, 160)), targets,
                                     maskiou_head=model.maskiou_head)
    assert losses["loss_maskiou"].item() == 0.0
    losses["loss_maskiou"].backward()
    assert all(param.grad is not None and not param.grad.any() for param in model.maskiou_head.parameters())
