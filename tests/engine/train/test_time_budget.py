"""train.time: the planner's arithmetic and the hook on a stub trainer with a fake clock."""
import pytest

from tests.engine.train.test_trainer import make_trainer
from yolact.config import load_config
from yolact.engine.checkpoint import load_checkpoint
from yolact.engine.train.hooks import Checkpointer, HookBase
from yolact.engine.train.lr_schedule import LrSchedule
from yolact.engine.train.time_budget import TimeBudgetHook
from yolact.engine.train.time_plan import (Plan, estimated_seconds, periodic_validations,
                                           plan_length, scale_schedule)
from yolact.engine.train.validation_hook import ValidationHook

NOMINAL = Plan(max_iter=100, warmup_iters=10, lr_steps=(75, 90), val_interval=0, save_interval=25)
SCHEDULE = LrSchedule(kind="step", base_lr=0.01, warmup_init_lr=0.001, warmup_iters=10, total_iters=100,
                      lr_steps=(75, 90), gamma=0.1)


class FakeClock:
    def __init__(self, now=0.0):
        self.now = now

    def __call__(self):
        return self.now


class StepCost(HookBase):
    """Each step takes ``cost(iteration)`` seconds of the fake clock; stops at ``stop_at``."""

    def __init__(self, clock, cost, stop_at=None):
        self.clock, self.cost, self.stop_at = clock, cost, stop_at

    def before_step(self, trainer):
        self.clock.now += self.cost(trainer.state.iteration)

    def after_step(self, trainer):
        if trainer.state.iteration == self.stop_at:
            trainer.state.stop_reason = "SIGTERM"


def budget_hook(clock, *, nominal=NOMINAL, val_images=8, minutes=1.0, final_eval=True):
    return TimeBudgetHook(budget_min=minutes, nominal=nominal, schedule=SCHEDULE, val_images=val_images,
                          batch_size=2, final_eval=final_eval, clock=clock, skip_steps=3, window=10,
                          check_interval=10)


def validation(clock, seconds=2.0, interval=0):
    def evaluate(model):
        clock.now += seconds
        return {"segm/AP": 0.5}, ""
    return ValidationHook(interval=interval, evaluate=evaluate, visualize=lambda model: [])


def test_scaled_plan_and_its_cost():
    assert scale_schedule(NOMINAL, 200) == Plan(max_iter=200, warmup_iters=20, lr_steps=(150, 180), val_interval=0,
                                                save_interval=50)
    plan = scale_schedule(Plan(100, 0, (), val_interval=50, save_interval=0), 200)
    assert (plan.warmup_iters, plan.val_interval, plan.save_interval) == (0, 100, 0)
    assert [periodic_validations(plan, done) for done in (0, 99, 100, 199)] == [1, 1, 0, 0]
    nominal = Plan(100, 10, (75, 90), val_interval=50, save_interval=25)
    # 190 steps of 1 s, one periodic validation (at 100) and the final one, 5 s each
    assert estimated_seconds(200, nominal=nominal, done=10, elapsed_s=10.0, step_s=1.0, eval_s=5.0,
                             final_eval=True) == 210.0
    assert plan_length(budget_s=210.0, nominal=nominal, done=10, elapsed_s=10.0, step_s=1.0, eval_s=5.0,
                       final_eval=True) == 200
    assert plan_length(budget_s=209.0, nominal=NOMINAL, done=10, elapsed_s=10.0, step_s=1.0, eval_s=5.0,
                       final_eval=True) == 204  # no periodic validation: 10 + 194 + 5
    assert plan_length(budget_s=209.0, nominal=NOMINAL, done=10, elapsed_s=10.0, step_s=1.0, eval_s=5.0,
                       final_eval=False) == 209
    assert plan_length(budget_s=14.0, nominal=nominal, done=10, elapsed_s=10.0, step_s=1.0, eval_s=5.0,
                       final_eval=True) == 10  # not even the final evaluation fits: stop now


def test_plans_after_the_warm_up_and_ends_exactly_at_the_budget():
    clock = FakeClock()
    hook = budget_hook(clock)
    trainer = make_trainer(hooks=[hook, StepCost(clock, lambda it: 0.5), validation(clock)], max_iter=100)
    trainer.train()
    # planned at iteration 13 (3 start-up + 10 measured steps, 6.5 s): 6.5 + (N - 13) * 0.5 + 2 <= 60
    assert hook.plan == Plan(max_iter=116, warmup_iters=12, lr_steps=(87, 104), val_interval=0, save_interval=29)
    assert trainer.state.iteration == 116 and trainer.state.validation.iteration == 116
    assert clock.now == 60.0
    assert trainer.lr_at == LrSchedule(kind="step", base_lr=0.01, warmup_init_lr=0.001, warmup_iters=12,
                                       total_iters=116, lr_steps=(87, 104), gamma=0.1)


def test_seconds_spent_before_training_count_against_the_budget():
    clock = FakeClock()
    hook = TimeBudgetHook(budget_min=1.0, nominal=NOMINAL, schedule=SCHEDULE, val_images=8, batch_size=2,
                          final_eval=True, spent_s=10.0, clock=clock, skip_steps=3, window=10, check_interval=10)
    trainer = make_trainer(hooks=[hook, StepCost(clock, lambda it: 0.5), validation(clock)], max_iter=100)
    trainer.train()
    # the run above with 10 s fewer: 10 + 6.5 + (N - 13) * 0.5 + 2 <= 60
    assert hook.plan.max_iter == 96 and trainer.state.iteration == 96
    assert clock.now == 50.0 and hook.elapsed() == 60.0


def test_a_slowdown_shrinks_the_plan_and_never_passes_the_budget():
    clock = FakeClock()
    hook = budget_hook(clock)
    cost = lambda it: 0.5 if it < 40 else 1.0  # noqa: E731
    trainer = make_trainer(hooks=[hook, StepCost(clock, cost), validation(clock)], max_iter=100)
    trainer.train()
    # at the check of iteration 50: 30 s spent, 1 s per step, so the evaluation estimate is
    # 8 images * 1 s / 2 per step = 4 s: 30 + (N - 50) + 4 <= 60; the evaluation took 2 s
    assert trainer.state.iteration == hook.plan.max_iter == 76
    assert clock.now == 58.0


def test_periodic_validations_are_timed_and_reserved():
    clock = FakeClock()
    nominal = Plan(max_iter=100, warmup_iters=10, lr_steps=(75, 90), val_interval=50, save_interval=0)
    hook = budget_hook(clock, nominal=nominal, val_images=8)
    trainer = make_trainer(hooks=[hook, StepCost(clock, lambda it: 0.5), validation(clock, 6.0, interval=50)],
                           max_iter=100)
    trainer.train()
    assert hook.eval_s == 6.0  # measured at the turn after the periodic validation
    assert clock.now <= 60.0
    assert trainer.state.iteration == hook.plan.max_iter
    # the last check knew every cost: one more step would not have fitted
    assert clock.now + 0.5 > 60.0 - 6.0 * periodic_validations(hook.plan, trainer.state.iteration)


def test_a_budget_too_small_for_the_warm_up_stops_in_time():
    clock = FakeClock()
    hook = budget_hook(clock, minutes=0.05)  # 3 s: 2 s of final evaluation leave 2 steps
    trainer = make_trainer(hooks=[hook, StepCost(clock, lambda it: 0.5), validation(clock)], max_iter=100)
    trainer.train()
    assert trainer.state.iteration == 2 and clock.now == 3.0


def test_a_resumed_run_keeps_its_plan_and_the_time_spent(tmp_path):
    (tmp_path / "weights").mkdir()
    clock = FakeClock()
    first = budget_hook(clock, val_images=16)  # 16 images at 0.5 s per 2: a 4 s evaluation estimate
    saver = Checkpointer(tmp_path, config=load_config("shapes"), class_names=["a"], category_ids=[1],
                         save_interval=0)
    make_trainer(hooks=[first, StepCost(clock, lambda it: 0.5, stop_at=30), validation(clock), saver],
                 max_iter=100).train()
    assert first.plan.max_iter == 112  # 6.5 + (N - 13) * 0.5 + 4 <= 60
    state = load_checkpoint(tmp_path / "weights" / "last.pth")["hooks"]["TimeBudgetHook"]
    assert (state["spent_s"], state["plan"]["max_iter"]) == (15.0, 112)

    clock = FakeClock(1000.0)  # a new process: another monotonic origin, and a machine twice as fast
    resumed = budget_hook(clock, val_images=16)
    resumed.load_state_dict(state)
    trainer = make_trainer(hooks=[resumed, StepCost(clock, lambda it: 0.25), validation(clock)], max_iter=100)
    trainer.state.iteration = 30
    seen = []

    class MaxIter(HookBase):
        def before_train(self, trainer):
            seen.append(trainer.max_iter)
    trainer.hooks = [resumed, MaxIter(), *trainer.hooks[1:]]
    trainer.train()
    assert seen == [112]  # the plan is back before the first step
    # re-planned at iteration 40: 17.5 s spent, 0.25 s per step, 2 s evaluation: 17.5 + (N - 40) / 4 + 2 <= 60
    assert trainer.state.iteration == resumed.plan.max_iter == 202
    assert resumed.elapsed() == pytest.approx(60.0)


def test_a_config_shorter_than_the_measuring_still_gets_a_plan():
    clock = FakeClock()
    hook = budget_hook(clock)
    trainer = make_trainer(hooks=[hook, StepCost(clock, lambda it: 0.5), validation(clock)], max_iter=5)
    trainer.train()
    # max_iter 5 would end before the 13 steps the plan needs; the plan is that of max_iter 100's run
    assert hook.plan.max_iter == trainer.state.iteration == 116 and clock.now == 60.0


def test_a_re_planned_interval_counts_from_the_last_validation():
    """F_b0 of the learning benchmark validated at 661, 695 and 713 as the plan moved; now the next
    validation is one interval after the last one."""
    clock, seen = FakeClock(), []

    class Replan(HookBase):
        def after_step(self, trainer):
            validation_hook.interval = {10: 12, 11: 11}.get(trainer.state.iteration, validation_hook.interval)

    validation_hook = validation(clock, 0.0, interval=10)
    evaluate = validation_hook.evaluate
    validation_hook.evaluate = lambda model: (seen.append(trainer.state.iteration), evaluate(model))[1]
    trainer = make_trainer(hooks=[validation_hook, Replan()], max_iter=40)
    trainer.train()
    # the interval ends at 11: 11 after 10, then 11 after 21, then the final one; the multiples of
    # the moving interval would have validated at 10, 11, 22, 33 and 40
    assert seen == [10, 21, 32, 40]


def test_invalid_budget_is_refused():
    with pytest.raises(ValueError, match="positive"):
        budget_hook(FakeClock(), minutes=0.0)


def test_a_resume_with_a_larger_budget_plans_longer_at_once():
    clock = FakeClock()
    first = budget_hook(clock)
    make_trainer(hooks=[first, StepCost(clock, lambda it: 0.5), validation(clock)], max_iter=100).train()
    assert first.plan.max_iter == 116 and first.elapsed() == 60.0
    resumed = budget_hook(FakeClock(500.0), minutes=2.0)
    resumed.load_state_dict(first.state_dict())
    trainer = make_trainer(hooks=[resumed], max_iter=100)
    trainer.state.iteration = 116
    resumed.before_train(trainer)
    # 60 s spent (the final evaluation included), 0.5 s per step, 2 s evaluation: 60 + (N - 116) / 2 + 2 <= 120
    assert trainer.max_iter == resumed.plan.max_iter == 232



class RecordLength(HookBase):
    """Appends ``trainer.max_iter`` after each step: the planned length as it moves."""

    def __init__(self):
        self.lengths = []

    def after_step(self, trainer):
        self.lengths.append(trainer.max_iter)


def noisy_cost(iteration):
    """0.2 s steps with every third one 0.5 s (0.3 s on average), as plain and mosaic batches."""
    return 0.5 if iteration % 3 == 2 else 0.2


def test_noisy_steps_keep_the_plan_and_the_log_steady(caplog):
    """With the default 50-step window noisy steps move the plan by under 1.5% and the log shows
    one plan and an ETA per tenth."""
    clock = FakeClock()
    hook = TimeBudgetHook(budget_min=10.0, nominal=NOMINAL, schedule=SCHEDULE, val_images=8, batch_size=2,
                          final_eval=True, clock=clock)  # the defaults: plan after 10 steps, 50-step window
    record = RecordLength()
    trainer = make_trainer(hooks=[hook, StepCost(clock, noisy_cost), validation(clock), record], max_iter=100)
    with caplog.at_level("INFO", logger="yolact"):
        trainer.train()
    assert clock.now <= 600.0 and trainer.state.iteration == hook.plan.max_iter
    settled = record.lengths[60:]  # once the window is full
    assert (max(settled) - min(settled)) / min(settled) < 0.015
    plans = [r.message for r in caplog.records if "; plan " in r.message]
    etas = [r.message for r in caplog.records if r.message.startswith("time budget: iteration ")]
    assert len(plans) == 1
    shown = [tuple(int(n) for n in m.split()[3].rstrip(",").split("/")) for m in etas]  # (iteration, plan)
    assert shown[0][0] == 13  # the first plan, after 3 start-up and 10 measured steps
    assert all(later[0] == it + plan // 10 for (it, plan), later in zip(shown, shown[1:]))
    assert len(etas) == 10


def test_noisy_steps_in_a_10_step_window_move_the_plan_more():
    """The same steps measured over 10: the plan swings by 5% or more (why the window is 50)."""
    clock = FakeClock()
    record = RecordLength()
    hooks = [budget_hook(clock, minutes=10.0), StepCost(clock, noisy_cost), validation(clock), record]
    make_trainer(hooks=hooks, max_iter=100).train()
    settled = record.lengths[60:]
    assert (max(settled) - min(settled)) / min(settled) > 0.05
