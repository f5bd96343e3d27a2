"""The tiny model against the reference's own outputs (fixtures/reference, SPEC §1-§5)."""
import pytest
import torch

from yolact.modeling.reference_weights import load_model_weights
from yolact.modeling.yolact import make_yolact

# fixture output name -> ours
_OUTPUT_NAMES = {"loc": "box_deltas", "conf": "cls_logits", "mask": "mask_coeffs", "priors": "anchors",
                 "proto": "prototypes", "segm": "semseg_logits"}


def make_tiny_yolact():
    """yolact_tiny of the fixture README: Bottleneck [1,1,1,1], 64 channels, k 32, 80 + 1 classes."""
    return make_yolact(num_classes=80, block="bottleneck", layers=(1, 1, 1, 1), fpn_channels=64,
                       proto_channels=64, head_channels=64, num_prototypes=32)


def assert_close(name, ours, ref):
    assert ours.shape == ref.shape, (name, ours.shape, ref.shape)
    max_err = (ours - ref).abs().max().item()
    assert torch.allclose(ours, ref, rtol=1e-4, atol=1e-5), f"{name}: max abs error {max_err}"


@pytest.fixture(scope="module")
def tiny_model(reference_state):
    torch.manual_seed(0)
    model = make_tiny_yolact()
    assert load_model_weights(model, reference_state) == []
    return model


def test_train_mode_outputs_equal_reference(tiny_model, reference_dump):
    tiny_model.train()
    tiny_model.set_bn_frozen(True)
    with torch.no_grad():
        outputs = tiny_model(reference_dump["input"]["images"])
    ref_preds = reference_dump["train"]["preds"]
    assert set(outputs) == set(_OUTPUT_NAMES.values())
    for ref_name, our_name in _OUTPUT_NAMES.items():
        assert_close(our_name, outputs[our_name], ref_preds[ref_name])
    assert outputs["anchors"].shape == (19248, 4)


def test_eval_mode_sharp_outputs_equal_reference(tiny_model, reference_state, reference_dump, reference_dir):
    sharp_delta = torch.load(reference_dir / "yolact_tiny_sharp_delta.pth", weights_only=True)
    sharp_state = {**reference_state, **sharp_delta}
    assert load_model_weights(tiny_model, sharp_state) == []
    tiny_model.eval()
    with torch.no_grad():
        outputs = tiny_model(reference_dump["input"]["images"])
    raw = reference_dump["eval_sharp"]["raw"]
    assert "semseg_logits" not in outputs
    # the reference applies softmax inside its eval forward; ours leaves it to the post-processor
    assert_close("softmax(cls_logits)", outputs["cls_logits"].softmax(dim=-1), raw["conf"])
    assert_close("box_deltas", outputs["box_deltas"], raw["loc"])
    assert_close("mask_coeffs", outputs["mask_coeffs"], raw["mask"])
    assert_close("prototypes", outputs["prototypes"], raw["proto"])
    assert_close("anchors", outputs["anchors"], reference_dump["train"]["preds"]["priors"])
