"""yolact_plus_tiny's forward (FPN, DCN offsets and masks, head outputs, anchors) against the reference."""
import torch

from tests.plus.plus_tiny import assert_close_to_max
from yolact.modeling.deform_conv import ModulatedDeformConv2d
from yolact.modeling.reference_weights import to_reference_state_dict

_OUTPUT_NAMES = {"loc": "box_deltas", "conf": "cls_logits", "mask": "mask_coeffs", "priors": "anchors",
                 "proto": "prototypes", "segm": "semseg_logits"}


def _reference_dcn_name(our_name: str) -> str:
    """``backbone.layer2.0.conv2`` -> ``backbone.layers.1.0.conv2``."""
    _, stage, rest = our_name.split(".", 2)
    return f"backbone.layers.{int(stage[len('layer'):]) - 1}.{rest}"


def test_forward_equals_the_reference(plus_model, plus_dump):
    recorded = {}
    for name, module in plus_model.named_modules():
        if isinstance(module, ModulatedDeformConv2d):
            module.register_forward_hook(
                lambda mod, inputs, _, name=name: recorded.__setitem__(name, mod.offsets_and_mask(inputs[0])))
    fpn_levels = []
    plus_model.fpn.register_forward_hook(lambda mod, inputs, output: fpn_levels.extend(output))
    with torch.no_grad():
        outputs = plus_model(plus_dump["input"]["images"])
    train = plus_dump["train"]
    assert set(outputs) == set(_OUTPUT_NAMES.values())  # tensors only: the mask-IoU head runs later
    assert all(torch.is_tensor(value) for value in outputs.values())
    assert outputs["anchors"].shape == (6921, 4)  # 9 anchors per cell
    for ref_name, our_name in _OUTPUT_NAMES.items():
        assert_close_to_max(our_name, outputs[our_name], train["preds"][ref_name])
    for level, ours in enumerate(fpn_levels):
        assert_close_to_max(f"P{level + 3}", ours, train["fpn"][f"P{level + 3}"])
    assert sorted(_reference_dcn_name(name) for name in recorded) == sorted(train["dcn"])
    for name, (offset, mask) in recorded.items():
        reference = train["dcn"][_reference_dcn_name(name)]
        assert_close_to_max(f"{name} offset", offset, reference["offset"])
        assert_close_to_max(f"{name} mask", mask, reference["mask"])


def test_reference_key_layout_round_trips(plus_model, plus_state):
    exported = to_reference_state_dict(plus_model.state_dict())
    assert set(exported) == set(plus_state)
    assert all(torch.equal(exported[key], plus_state[key]) for key in plus_state)
