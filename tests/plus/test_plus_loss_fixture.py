"""The criterion with YOLACT++'s mask-IoU term against the reference: matching, samples, the five
terms with frozen and live BatchNorm, and the gradients."""
import pytest
import torch

from tests.plus.plus_tiny import assert_close_to_max
from yolact.loss import YolactCriterion
from yolact.loss.batch_targets import concatenate_targets
from yolact.loss.mask_loss import downsample_binary_masks, positive_masks
from yolact.loss.maskiou_loss import maskiou_samples
from yolact.modeling.reference_weights import to_reference_state_dict

REFERENCE_TERMS = {"loss_box": "B", "loss_mask": "M", "loss_cls": "C", "loss_maskiou": "I",
                   "loss_semseg": "S"}


def _criterion():
    return YolactCriterion(num_classes=80, use_maskiou=True, maskiou_weight=25.0, maskiou_min_gt_area=25.0)


def _losses(model, outputs, targets):
    return _criterion()(outputs, targets, maskiou_head=model.maskiou_head)


def _assert_terms(losses, reference_losses, reference_total):
    assert set(losses) == set(REFERENCE_TERMS)
    for name, reference_name in REFERENCE_TERMS.items():
        torch.testing.assert_close(losses[name].detach(), reference_losses[reference_name], rtol=1e-4,
                                   atol=0.0, msg=name)
    torch.testing.assert_close(sum(losses.values()).detach(), reference_total, rtol=1e-4, atol=0.0)


@pytest.fixture
def plus_outputs(plus_model, plus_dump):
    return plus_model(plus_dump["input"]["images"])


def _reference_grads(model):
    """Our parameters' gradients under the reference's names."""
    return to_reference_state_dict({name: param.grad for name, param in model.named_parameters()
                                    if param.grad is not None})


def test_matching_and_maskiou_samples_equal_the_reference(plus_model, plus_outputs, plus_targets, plus_dump):
    train = plus_dump["train"]
    conf_t, idx_t, _ = _criterion().match(plus_targets, plus_outputs["anchors"])
    assert torch.equal(conf_t, train["match"]["conf_t"]) and torch.equal(idx_t, train["match"]["idx_t"])
    prototypes = plus_outputs["prototypes"]
    gt = concatenate_targets(plus_targets, device=prototypes.device, dtype=prototypes.dtype)
    positive = positive_masks(prototypes, plus_outputs["mask_coeffs"], conf_t, idx_t, gt.boxes,
                              downsample_binary_masks(gt.masks, (48, 48), prototypes.dtype), gt.offsets)
    samples = maskiou_samples(positive, gt.labels, min_gt_area=25.0)
    assert samples.masks.shape == (22, 1, 48, 48)  # every positive; 5 with a GT of <= 25 px not trained
    trained = samples.trained
    assert int(trained.sum()) == 17 and not samples.target_ious[~trained].any()
    reference = train["maskiou"]
    assert_close_to_max("maskiou input", samples.masks[trained], reference["input"])
    assert torch.equal(samples.labels[trained], reference["label"])
    torch.testing.assert_close(samples.target_ious[trained], reference["target"], rtol=0, atol=1e-6)
    predicted = plus_model.maskiou_head(samples.masks[trained])[torch.arange(17), samples.labels[trained]]
    assert_close_to_max("maskiou pred", predicted, reference["pred"])


def test_five_terms_and_gradients_equal_the_reference(plus_model, plus_outputs, plus_targets, plus_dump):
    train = plus_dump["train"]
    losses = _losses(plus_model, plus_outputs, plus_targets)
    _assert_terms(losses, train["losses"], train["loss_total"])
    sum(losses.values()).backward()
    grads = _reference_grads(plus_model)
    assert len(train["grads"]) == 28
    for name, reference in train["grads"].items():
        ours = grads[name][: reference.shape[0]]  # large tensors keep only their leading output channels
        assert_close_to_max(f"grad {name}", ours, reference)


def test_maskiou_term_reaches_protonet_coefficients_and_backbone(plus_model, plus_outputs, plus_targets,
                                                                 plus_dump):
    """The mask-IoU head's input is not detached in the reference."""
    _losses(plus_model, plus_outputs, plus_targets)["loss_maskiou"].backward()
    grads = _reference_grads(plus_model)
    for name, reference in plus_dump["train"]["grads_I_only"].items():
        assert reference.abs().max() > 0
        assert_close_to_max(f"grad of I {name}", grads[name], reference)


def test_five_terms_with_live_batchnorm_equal_the_reference(plus_model, plus_targets, plus_dump):
    plus_model.set_bn_frozen(False).train()
    with torch.no_grad():
        losses = _losses(plus_model, plus_model(plus_dump["input"]["images"]), plus_targets)
    _assert_terms(losses, plus_dump["train_bnlive"]["losses"], plus_dump["train_bnlive"]["loss_total"])


def test_yolact_criterion_keeps_four_terms_on_a_plus_model(plus_outputs, plus_targets, plus_dump):
    losses = YolactCriterion(num_classes=80)(plus_outputs, plus_targets)
    assert set(losses) == set(REFERENCE_TERMS) - {"loss_maskiou"}
    torch.testing.assert_close(losses["loss_box"].detach(), plus_dump["train"]["losses"]["B"], rtol=1e-4,
                               atol=0.0)


def test_weights_and_no_sample_batch():
    criterion = YolactCriterion(num_classes=3, use_maskiou=True, maskiou_weight=10.0)
    assert criterion.loss_weights["loss_maskiou"] == 10.0
