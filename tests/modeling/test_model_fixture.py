"""The tiny model against the reference's own outputs (tests/reference_fixture, SPEC §1-§5)."""
import pytest
import torch

from yolact.modeling.reference_weights import load_model_weights
from yolact.modeling.yolact import make_yolact

# fixture output name -> ours
_OUTPUT_NAMES = {"loc": "box_deltas", "conf": "cls_logits", "mask": "mask_coeffs", "priors": "anchors",
                 "proto": "prototypes", "segm": "semseg_logits"}


def make_tiny_yolact(anchor_scales=(24, 48, 96, 192, 384)):
    """yolact_tiny of the fixture README: Bottleneck [1,1,1,1], 64 channels, k 32, 80 + 1 classes."""
    return make_yolact(num_classes=80, block="bottleneck", layers=(1, 1, 1, 1), fpn_channels=64,
                       proto_channels=64, head_channels=64, num_prototypes=32, anchor_scales=anchor_scales)


def tiny_model_for(reference, state=None):
    """The tiny model with the fixture's anchors and ``state`` (default: its train state)."""
    torch.manual_seed(0)
    model = make_tiny_yolact(reference.anchor_scales)
    assert load_model_weights(model, reference.train_state if state is None else state) == []
    return model


def assert_close(name, ours, ref):
    assert ours.shape == ref.shape, (name, ours.shape, ref.shape)
    max_err = (ours - ref).abs().max().item()
    assert torch.allclose(ours, ref, rtol=1e-4, atol=1e-5), f"{name}: max abs error {max_err}"


@pytest.fixture(scope="module")
def tiny_model(reference):
    return tiny_model_for(reference)


def test_train_mode_outputs_equal_reference(tiny_model, reference):
    tiny_model.train()
    tiny_model.set_bn_frozen(True)
    with torch.no_grad():
        outputs = tiny_model(reference.dump["input"]["images"])
    ref_preds = reference.dump["train"]["preds"]
    assert set(outputs) == set(_OUTPUT_NAMES.values())
    for ref_name, our_name in _OUTPUT_NAMES.items():
        assert_close(our_name, outputs[our_name], ref_preds[ref_name])
    assert outputs["anchors"].shape == (reference.num_anchors, 4)


def test_eval_mode_outputs_equal_reference(tiny_model, reference):
    assert load_model_weights(tiny_model, reference.eval_state) == []
    tiny_model.eval()
    with torch.no_grad():
        outputs = tiny_model(reference.dump["input"]["images"])
    raw = reference.eval_raw
    assert "semseg_logits" not in outputs
    # the reference applies softmax inside its eval forward; ours leaves it to the post-processor
    assert_close("softmax(cls_logits)", outputs["cls_logits"].softmax(dim=-1), raw["conf"])
    assert_close("box_deltas", outputs["box_deltas"], raw["loc"])
    assert_close("mask_coeffs", outputs["mask_coeffs"], raw["mask"])
    assert_close("prototypes", outputs["prototypes"], raw["proto"])
    assert_close("anchors", outputs["anchors"], reference.dump["train"]["preds"]["priors"])
