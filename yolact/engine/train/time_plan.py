"""Planning a training run against a time budget: how many iterations fit, and the schedule scaled to them.

Every iteration count of the configured schedule is read as a fraction of its ``max_iter``: a
plan of ``N`` iterations scales warmup, lr steps, validation and save intervals by
``N / max_iter``. The cost of a plan is estimated from measured seconds per iteration and per
validation; :func:`plan_length` is the largest plan whose estimate fits the budget.
"""
from dataclasses import dataclass
from typing import Tuple

__all__ = ["Plan", "scale_schedule", "periodic_validations", "estimated_seconds",
           "plan_length"]


@dataclass(frozen=True)
class Plan:
    """A schedule's lengths in iterations: the configured one (the unit plans scale) or a planned
    one of ``max_iter`` iterations with every count scaled. An interval of 0 is off."""
    max_iter: int
    warmup_iters: int
    lr_steps: Tuple[int, ...]
    val_interval: int
    save_interval: int


def _scale_count(value: int, ratio: float) -> int:
    """``round(value * ratio)``, at least 1 for a non-zero value (a zero stays off)."""
    return max(1, round(value * ratio)) if value else 0


def scale_schedule(nominal: Plan, planned_iters: int) -> Plan:
    """The nominal schedule stretched or shrunk to ``planned_iters`` iterations."""
    ratio = planned_iters / nominal.max_iter
    return Plan(max_iter=planned_iters, warmup_iters=_scale_count(nominal.warmup_iters, ratio),
                lr_steps=tuple(round(step * ratio) for step in nominal.lr_steps),
                val_interval=_scale_count(nominal.val_interval, ratio),
                save_interval=_scale_count(nominal.save_interval, ratio))


def periodic_validations(plan: Plan, done: int) -> int:
    """Validations still to come after iteration ``done``: at multiples of the interval below
    ``plan.max_iter`` (the final evaluation is counted apart)."""
    interval = plan.val_interval
    if not interval or plan.max_iter <= done + 1:
        return 0
    return max(0, (plan.max_iter - 1) // interval - done // interval)


def estimated_seconds(planned_iters: int, *, nominal: Plan, done: int, elapsed_s: float,
                      step_s: float, eval_s: float, final_eval: bool) -> float:
    """Wall time at the end of a run of ``planned_iters`` iterations (final evaluation included),
    given ``elapsed_s`` spent for the first ``done`` iterations."""
    plan = scale_schedule(nominal, planned_iters)
    evaluations = periodic_validations(plan, done) + (1 if final_eval else 0)
    return elapsed_s + max(0, planned_iters - done) * step_s + evaluations * eval_s


def plan_length(*, budget_s: float, nominal: Plan, done: int, elapsed_s: float, step_s: float,
                eval_s: float, final_eval: bool) -> int:
    """The largest ``N >= done`` whose :func:`estimated_seconds` is within ``budget_s``.

    Returns ``done`` (stop now) when not even that fits. ``step_s`` must be positive.
    """
    def fits(planned: int) -> bool:
        return estimated_seconds(planned, nominal=nominal, done=done, elapsed_s=elapsed_s, step_s=step_s,
                                 eval_s=eval_s, final_eval=final_eval) <= budget_s

    if not fits(done):
        return done
    # the iterations alone of ``high`` exceed the budget, so it does not fit
    low, high = done, done + int((budget_s - elapsed_s) / step_s) + 1
    while high - low > 1:  # invariant: fits(low), not fits(high)
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low
