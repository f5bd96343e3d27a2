"""Our state_dict layout <-> the reference's, and the checked loader (SPEC §1-§5, §10)."""
import logging

import pytest
import torch

from yolact.errors import YolactError
from yolact.modeling.reference_weights import (
    from_reference_state_dict, is_reference_state_dict, load_model_weights, to_reference_state_dict,
)
from yolact.modeling.yolact import make_yolact

_CLASS_TENSORS = ["head.cls_layer.weight", "head.cls_layer.bias",
                  "semseg_head.conv.weight", "semseg_head.conv.bias"]


def _tiny(num_classes=80, **overrides):
    kwargs = dict(num_classes=num_classes, layers=(1, 1, 1, 1), fpn_channels=64, proto_channels=64,
                  head_channels=64)
    kwargs.update(overrides)
    return make_yolact(**kwargs)


@pytest.fixture(scope="module")
def reference_state(compact_reference):
    """The reference's yolact_tiny state_dict (138 tensors, reference key names)."""
    return compact_reference.train_state


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return _tiny()


def test_reference_layout_round_trip_is_identity(reference_state, tiny_model):
    ours = from_reference_state_dict(reference_state)
    assert not is_reference_state_dict(ours) and is_reference_state_dict(reference_state)
    assert set(ours) == set(tiny_model.state_dict())  # exactly our model's keys
    back = to_reference_state_dict(ours)
    assert list(back) == list(reference_state)
    assert all(back[key] is reference_state[key] for key in reference_state)
    our_state = tiny_model.state_dict()
    again = from_reference_state_dict(to_reference_state_dict(our_state))
    assert list(again) == list(our_state) and all(again[key] is our_state[key] for key in our_state)


def test_key_mapping_examples(reference_state):
    ours = from_reference_state_dict(reference_state)
    pairs = {
        "backbone.conv1.weight": "backbone.conv1.weight",
        "backbone.layer1.0.downsample.1.running_var": "backbone.layers.0.0.downsample.1.running_var",
        "backbone.layer4.0.conv3.weight": "backbone.layers.3.0.conv3.weight",
        "fpn.lateral_convs.2.weight": "fpn.lat_layers.0.weight",  # C5
        "fpn.lateral_convs.0.weight": "fpn.lat_layers.2.weight",  # C3
        "fpn.output_convs.0.bias": "fpn.pred_layers.2.bias",      # P3
        "fpn.downsample_convs.1.weight": "fpn.downsample_layers.1.weight",  # P7
        "protonet.layers.10.weight": "proto_net.10.weight",
        "head.upfeature.weight": "prediction_layers.0.upfeature.0.weight",
        "head.cls_layer.weight": "prediction_layers.0.conf_layer.weight",
        "head.coeff_layer.bias": "prediction_layers.0.mask_layer.bias",
        "semseg_head.conv.weight": "semantic_seg_conv.weight",
    }
    for our_key, reference_key in pairs.items():
        assert ours[our_key] is reference_state[reference_key]
    assert ours["fpn.lateral_convs.2.weight"].shape == (64, 2048, 1, 1)


def test_legacy_keys_and_missing_counters_load(reference_state, tiny_model):
    legacy = {key: value for key, value in reference_state.items() if not key.endswith("num_batches_tracked")}
    legacy["backbone.layer1.0.conv1.weight"] = torch.zeros(1)       # pre-`layers` naming: dropped
    legacy["fpn.downsample_layers.2.weight"] = torch.zeros(1)       # v1.0 extra level: dropped
    assert load_model_weights(tiny_model, legacy) == []
    loaded = tiny_model.state_dict()
    assert torch.equal(loaded["fpn.lateral_convs.2.weight"], reference_state["fpn.lat_layers.0.weight"])
    assert loaded["backbone.bn1.num_batches_tracked"].item() == 0


def test_ddp_prefix_and_our_layout_load(reference_state, tiny_model):
    ours = from_reference_state_dict(reference_state)
    assert load_model_weights(tiny_model, {f"module.{key}": value for key, value in ours.items()}) == []
    assert torch.equal(tiny_model.state_dict()["head.box_layer.weight"],
                       reference_state["prediction_layers.0.bbox_layer.weight"])


def test_other_class_count_reinitialises_only_class_layers(reference_state, caplog):
    torch.manual_seed(1)
    model = _tiny(num_classes=80)
    fresh = {key: value.clone() for key, value in model.state_dict().items()}
    eleven_class_state = _tiny(num_classes=10).state_dict()  # 10 foreground + background = 11
    for state, name in [(eleven_class_state, "head.cls_layer"),
                        (to_reference_state_dict(eleven_class_state), "prediction_layers.0.conf_layer")]:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="yolact"):
            reinitialised = load_model_weights(model, state)
        assert sorted(reinitialised) == sorted(_CLASS_TENSORS)
        loaded = model.state_dict()
        for key in loaded:
            expected = fresh[key] if key in _CLASS_TENSORS else eleven_class_state[key]
            assert torch.equal(loaded[key], expected), key
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("re-initialised")]
        assert len(lines) == 2
        assert "head.cls_layer" in lines[0] and name in lines[0] and "[33, 64, 3, 3]" in lines[0]
        assert "semseg_head.conv" in lines[1] and "[10, 64, 1, 1]" in lines[1]


def test_other_architecture_raises(reference_state):
    model = _tiny()
    basic_state = _tiny(block="basic").state_dict()
    with pytest.raises(YolactError, match=r"backbone.layer1.0.conv3.weight \[256, 64, 1, 1\] is missing"):
        load_model_weights(model, basic_state)
    wide_state = to_reference_state_dict(_tiny(fpn_channels=32).state_dict())
    expected = r"fpn.lat_layers.2.weight has shape \[32, 512, 1, 1\] in the checkpoint and \[64, 512, 1, 1\]"
    with pytest.raises(YolactError, match=expected):
        load_model_weights(model, wide_state)
    extra = {**reference_state, "prediction_layers.0.extra.weight": torch.zeros(2)}
    with pytest.raises(YolactError, match=r"prediction_layers.0.extra.weight \[2\] is not in the model"):
        load_model_weights(model, extra)
