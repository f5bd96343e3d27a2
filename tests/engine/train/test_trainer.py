"""The training loop alone, with a stub model and criterion: hook order, non-finite streak, clipping, logging."""
import itertools
import logging
import math

import pytest
import torch
from torch import nn

from yolact.engine.train.hooks import HookBase
from yolact.engine.train.trainer import Trainer
from yolact.errors import YolactError


class StubModel(nn.Module):
    """One weight w: outputs {"value": w * images.sum()}."""

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor([weight]))

    def forward(self, images):
        return {"value": self.weight * images.sum()}


class StubCriterion(nn.Module):
    """loss_a = 2 * value (weight 2), loss_b = value**2 * 0.5 (weight 0.5); NaN at chosen calls."""

    def __init__(self, nan_calls=()):
        super().__init__()
        self.loss_weights = {"loss_a": 2.0, "loss_b": 0.5}
        self.nan_calls, self.calls = set(nan_calls), 0

    def forward(self, outputs, targets):
        self.calls += 1
        value = outputs["value"].sum()
        losses = {"loss_a": 2.0 * value, "loss_b": 0.5 * value ** 2}
        if self.calls in self.nan_calls:
            losses["loss_b"] = losses["loss_b"] * math.nan
        return losses


class Recorder(HookBase):
    def __init__(self, name, log):
        self.name, self.log = name, log

    def before_train(self, trainer):
        self.log.append((self.name, "before_train", trainer.state.iteration))

    def before_step(self, trainer):
        self.log.append((self.name, "before_step", trainer.state.iteration))

    def after_step(self, trainer):
        self.log.append((self.name, "after_step", trainer.state.iteration))

    def after_skipped_step(self, trainer):
        self.log.append((self.name, "after_skipped_step", trainer.state.iteration))

    def after_train(self, trainer):
        self.log.append((self.name, "after_train", trainer.state.iteration))


def batches(value: float = 1.0):
    """images (1,1) of ``value``, with a target carrying an image id."""
    return itertools.repeat((torch.full((1, 1), value), [{"image_id": 7}]))


def make_trainer(*, criterion=None, hooks=(), max_iter=2, lr=0.1, weight=1.0, value=1.0, **kwargs):
    model = StubModel(weight)
    return Trainer(model=model, criterion=criterion or StubCriterion(),
                   optimizer=torch.optim.SGD(model.parameters(), lr=lr), batches=batches(value),
                   device=torch.device("cpu"), lr_at=lambda iteration: lr, max_iter=max_iter, hooks=hooks, **kwargs)


def test_hooks_run_in_lifecycle_order():
    log = []
    trainer = make_trainer(hooks=[Recorder("a", log), Recorder("b", log)], max_iter=2)
    trainer.train()
    assert log == [("a", "before_train", 0), ("b", "before_train", 0),
                   ("a", "before_step", 0), ("b", "before_step", 0),
                   ("a", "after_step", 1), ("b", "after_step", 1),
                   ("a", "before_step", 1), ("b", "before_step", 1),
                   ("a", "after_step", 2), ("b", "after_step", 2),
                   ("a", "after_train", 2), ("b", "after_train", 2)]


def test_a_hook_can_stop_the_loop():
    class StopAtOne(HookBase):
        def after_step(self, trainer):
            if trainer.state.iteration == 1:
                trainer.state.stop_reason = "budget"

    state = make_trainer(hooks=[StopAtOne()], max_iter=5).train()
    assert (state.iteration, state.stop_reason, state.crashed) == (1, "budget", False)


def test_step_updates_and_logs_weighted_and_unweighted_terms():
    trainer = make_trainer(max_iter=1, lr=0.1, weight=1.0, value=1.0)
    trainer.train()
    # total = 2w + 0.5 w^2, d/dw = 2 + w = 3 at w = 1: w <- 1 - 0.1 * 3
    assert trainer.model.weight.item() == pytest.approx(0.7)
    scalars = trainer.last_scalars
    assert (scalars["loss_a"], scalars["loss_b"], scalars["loss_total"]) == (2.0, 0.5, 2.5)
    assert (scalars["unweighted/loss_a"], scalars["unweighted/loss_b"]) == (1.0, 1.0)
    assert scalars["lr"] == 0.1 and scalars["data_time"] >= 0 and scalars["step_time"] >= 0


def test_gradient_clipping_caps_the_global_norm():
    # w = 1, images sum 10: grad of 2*10w + 0.5*(10w)^2 is 20 + 100 = 120; clipped to 1.5
    trainer = make_trainer(max_iter=1, lr=1.0, value=10.0, grad_clip=1.5)
    trainer.train()
    assert trainer.model.weight.item() == pytest.approx(1.0 - 1.5, abs=1e-5)
    unclipped = make_trainer(max_iter=1, lr=1.0, value=10.0)
    unclipped.train()
    assert unclipped.model.weight.item() == pytest.approx(1.0 - 120.0)


def test_nonfinite_steps_are_skipped_and_the_streak_resets():
    log = []
    criterion = StubCriterion(nan_calls={2, 3})  # calls 1..: the 2nd and 3rd losses are NaN
    trainer = make_trainer(criterion=criterion, hooks=[Recorder("r", log)], max_iter=2, max_nonfinite=3, lr=0.0)
    state = trainer.train()
    moments = [(moment, iteration) for _, moment, iteration in log if moment != "before_step"]
    assert moments == [("before_train", 0), ("after_step", 1), ("after_skipped_step", 1),
                       ("after_skipped_step", 1), ("after_step", 2), ("after_train", 2)]
    assert (state.iteration, state.nonfinite_streak, state.stop_reason, criterion.calls) == (2, 0, None, 4)


def test_nonfinite_streak_stops_after_the_hooks_with_one_error(caplog):
    yolact_logger = logging.getLogger("yolact")  # it may not propagate (train.main's console setup)
    yolact_logger.addHandler(caplog.handler)
    log = []
    criterion = StubCriterion(nan_calls={2, 3, 4})
    trainer = make_trainer(criterion=criterion, hooks=[Recorder("r", log)], max_iter=10, max_nonfinite=3)
    try:
        with pytest.raises(YolactError) as error:
            trainer.train()
    finally:
        yolact_logger.removeHandler(caplog.handler)
    assert str(error.value).startswith("training stopped at iteration 1: 3 non-finite losses in a row (last: ")
    assert "loss_b=nan" in str(error.value) and "image ids [7]" in str(error.value)
    assert log[-1] == ("r", "after_train", 1)  # hooks finish (a checkpoint of the last good state) first
    state = trainer.state
    assert (state.iteration, state.nonfinite_streak, state.stop_reason, state.crashed) == (1, 3, "nonfinite", False)
    assert "non-finite loss at iteration 1" in caplog.text and "(3/3 in a row)" in caplog.text


def test_an_error_still_runs_after_train_and_marks_the_state():
    log = []

    class Boom(HookBase):
        def after_step(self, trainer):
            raise RuntimeError("boom")

    trainer = make_trainer(hooks=[Boom(), Recorder("r", log)], max_iter=3)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.train()
    assert log[-1] == ("r", "after_train", 1) and trainer.state.crashed


def poison_gradients(model: StubModel, nan_backwards):
    """Make w's gradient NaN at the chosen backward passes (1, 2, ...), with a finite loss:
    what a faulty low-precision kernel does (README "On a CPU with AMX")."""
    backwards = itertools.count(1)
    model.weight.register_hook(lambda grad: grad * math.nan if next(backwards) in nan_backwards else grad)


def test_checked_nonfinite_gradients_are_skipped_without_an_update(caplog):
    yolact_logger = logging.getLogger("yolact")
    yolact_logger.addHandler(caplog.handler)
    log = []
    checked = make_trainer(hooks=[Recorder("r", log)], max_iter=2, lr=0.1, check_gradients=True)
    poison_gradients(checked.model, {1})
    unchecked = make_trainer(max_iter=1, lr=0.1)
    poison_gradients(unchecked.model, {1})
    try:
        state = checked.train()
    finally:
        yolact_logger.removeHandler(caplog.handler)
    unchecked.train()
    moments = [(moment, iteration) for _, moment, iteration in log if moment != "before_step"]
    assert moments == [("before_train", 0), ("after_skipped_step", 0), ("after_step", 1), ("after_step", 2),
                       ("after_train", 2)]
    # w = 1 -> 0.7 -> 0.7 - 0.1 * (2 + 0.7) = 0.43: two clean steps, as if the poisoned one never happened
    assert checked.model.weight.item() == pytest.approx(0.43)
    assert (state.iteration, state.nonfinite_streak) == (2, 0)
    assert "non-finite gradient at iteration 0 (loss_a=2, loss_b=0.5)" in caplog.text
    assert math.isnan(unchecked.model.weight.item())  # what the check prevents


def test_a_streak_of_nonfinite_gradients_stops_naming_them():
    trainer = make_trainer(max_iter=10, max_nonfinite=2, check_gradients=True)
    poison_gradients(trainer.model, {2, 3})
    with pytest.raises(YolactError, match=r"^training stopped at iteration 1: 2 non-finite gradients in a row"):
        trainer.train()
    assert trainer.model.weight.item() == pytest.approx(0.7)  # the last good state
