"""Model + criterion end to end against the reference: the gradients of the total loss for its 18
named parameters (frozen BatchNorm), and the loss terms with BatchNorm in training mode."""
import torch

from tests.loss.test_loss_criterion_fixture import REFERENCE_TERMS, _targets_from_reference
from tests.modeling.test_model_fixture import make_tiny_yolact
from yolact.loss import YolactCriterion
from yolact.modeling.reference_weights import load_model_weights, to_reference_state_dict


def _tiny_model(reference_state, *, bn_frozen: bool):
    torch.manual_seed(0)
    model = make_tiny_yolact()
    assert load_model_weights(model, reference_state) == []
    model.train()
    model.set_bn_frozen(bn_frozen)
    return model


def _losses(model, reference_dump):
    outputs = model(reference_dump["input"]["images"])
    return YolactCriterion(num_classes=80)(outputs, _targets_from_reference(reference_dump["input"]))


def test_gradients_equal_the_reference(reference_state, reference_dump):
    model = _tiny_model(reference_state, bn_frozen=True)
    losses = _losses(model, reference_dump)
    sum(losses.values()).backward()
    our_grads = to_reference_state_dict({name: p.grad for name, p in model.named_parameters() if p.grad is not None})
    expected_grads = reference_dump["train"]["grads"]
    assert len(expected_grads) == 18  # the fixture README says 19; the dump holds 18 distinct names
    for name, expected in expected_grads.items():
        ours = our_grads[name]
        assert ours.shape == expected.shape, name
        scale = expected.abs().max().item()
        error = (ours - expected).abs().max().item()
        assert error <= 1e-4 * scale + 1e-7, f"{name}: max error {error:.3g} at magnitude {scale:.3g}"


def test_frozen_batchnorm_parameters_get_no_gradient(reference_state, reference_dump):
    model = _tiny_model(reference_state, bn_frozen=True)
    sum(_losses(model, reference_dump).values()).backward()
    batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batchnorms and all(m.weight.grad is None and m.bias.grad is None for m in batchnorms)


def test_loss_terms_with_live_batchnorm_equal_the_reference(reference_state, reference_dump):
    model = _tiny_model(reference_state, bn_frozen=False)
    with torch.no_grad():
        losses = _losses(model, reference_dump)
    expected = reference_dump["train_bnlive"]
    for name, reference_name in REFERENCE_TERMS.items():
        torch.testing.assert_close(losses[name], expected["losses"][reference_name], rtol=1e-4, atol=0.0, msg=name)
    torch.testing.assert_close(sum(losses.values()), expected["loss_total"], rtol=1e-4, atol=0.0)
