"""Model + criterion end to end against the reference: the gradients of the total loss for its
named parameters (frozen BatchNorm), and the loss terms with BatchNorm in training mode."""
import torch

from tests.loss.test_loss_criterion_fixture import REFERENCE_TERMS, _targets_from_reference
from tests.modeling.test_model_fixture import tiny_model_for
from yolact.loss import YolactCriterion
from yolact.modeling.reference_weights import to_reference_state_dict

# Both sides sum in fp32, in an order that depends on the thread count and the kernels. Measured
# on the 550 fixture: with 2 or more threads our gradients are within 3e-7 of the magnitude of the
# reference's, with one thread up to 1.8e-4 (proto_net.10.bias, a sum over 2 x 138 x 138 pixels;
# AVX-512, AVX2 and default kernels alike), which is the reference's own distance from a float64
# sum there. A wrong gradient is off by percents.
GRADIENT_RTOL = 4e-4


def _tiny_model(reference, *, bn_frozen: bool):
    model = tiny_model_for(reference)
    model.train()
    model.set_bn_frozen(bn_frozen)
    return model


def _losses(model, reference):
    outputs = model(reference.dump["input"]["images"])
    return YolactCriterion(num_classes=80)(outputs, _targets_from_reference(reference.dump["input"]))


def test_gradients_equal_the_reference(reference):
    model = _tiny_model(reference, bn_frozen=True)
    losses = _losses(model, reference)
    sum(losses.values()).backward()
    our_grads = to_reference_state_dict({name: p.grad for name, p in model.named_parameters() if p.grad is not None})
    expected_grads = reference.dump["train"]["grads"]
    # the 550 fixture's README says 19; its dump holds 18 distinct names. The compact fixture
    # stores only the first output channels of the large ones (train.grad_rows).
    assert len(expected_grads) == reference.num_grads
    grad_rows = reference.dump["train"].get("grad_rows", {})
    for name, expected in expected_grads.items():
        ours = our_grads[name]
        if name in grad_rows:
            rows, full_shape = grad_rows[name]
            assert list(ours.shape) == full_shape and expected.shape[0] == rows, name
        ours = ours[:expected.shape[0]]
        assert ours.shape == expected.shape, name
        scale = expected.abs().max().item()
        error = (ours - expected).abs().max().item()
        assert error <= GRADIENT_RTOL * scale + 1e-7, f"{name}: max error {error:.3g} at magnitude {scale:.3g}"


def test_frozen_batchnorm_parameters_get_no_gradient(compact_reference):
    model = _tiny_model(compact_reference, bn_frozen=True)
    sum(_losses(model, compact_reference).values()).backward()
    batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batchnorms and all(m.weight.grad is None and m.bias.grad is None for m in batchnorms)


def test_loss_terms_with_live_batchnorm_equal_the_reference(reference):
    model = _tiny_model(reference, bn_frozen=False)
    with torch.no_grad():
        losses = _losses(model, reference)
    expected = reference.dump["train_bnlive"]
    for name, reference_name in REFERENCE_TERMS.items():
        torch.testing.assert_close(losses[name], expected["losses"][reference_name], rtol=1e-4, atol=0.0, msg=name)
    torch.testing.assert_close(sum(losses.values()), expected["loss_total"], rtol=1e-4, atol=0.0)
