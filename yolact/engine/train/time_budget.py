"""``train.time``: a hook that plans the run's length against the wall clock (as Ultralytics' ``time``).

The first ``skip_steps`` iterations of a session (workers starting, first allocations) are not
measured; after ``first_plan_after`` measured iterations the hook plans: the largest iteration
count whose training plus periodic and final evaluations fit the budget (:mod:`.time_plan`). It
then sets ``trainer.max_iter`` and ``trainer.lr_at`` and the validation and checkpoint intervals
of the plan, and checks again every ``check_interval`` iterations with the mean cost of the last
``window`` steps: a plan shrinks whenever the estimate says so (never past the budget) and grows
when it is more than ``GROW_TOLERANCE`` short. The window is 50 steps by default: the mean of 10
moved by about 5% from one check to the next on 2 CPU cores (a mosaic batch loads slower than a
plain one), and the plan, the lr schedule and the log moved with it. The log shows a plan when it
is new or ``LOG_TOLERANCE`` away from the last one shown, and an ETA line per tenth of the plan.
Validation turns are timed apart (the longest one is the estimate of an evaluation; before the
first, ``val_images`` times the seconds per training image). The time spent and the plan are the
hook's state, so a resumed run keeps both.
"""
import dataclasses
import datetime
import logging
import time
from collections import deque
from typing import Any, Callable, Dict, Optional

import torch
import torch.distributed as dist

from yolact.engine.train.hooks import Checkpointer, HookBase
from yolact.engine.train.lr_schedule import LrSchedule
from yolact.engine.train.time_plan import Plan, plan_length, scale_schedule
from yolact.utils.distributed import all_reduce_mean

__all__ = ["TimeBudgetHook", "GROW_TOLERANCE", "LOG_TOLERANCE"]

logger = logging.getLogger("yolact")

GROW_TOLERANCE = 0.02  # a re-plan only lengthens the run when it gains more than this fraction
LOG_TOLERANCE = 0.05   # a re-plan is logged when it moves the length by more than this fraction


class TimeBudgetHook(HookBase):
    """Plans ``trainer.max_iter`` so that the run ends within ``budget_min`` minutes.

    Args:
        budget_min: the budget, training plus the final evaluation.
        nominal: the configured schedule; ``schedule`` the configured lr schedule, both scaled.
        val_images: images per evaluation (0: no evaluation); ``batch_size`` images per step.
        final_eval: whether the run ends with an evaluation that the budget must hold.
        spent_s: seconds of the budget spent before training (a resumed run's come from its state).
        clock: seconds, monotonic (injectable for tests).
    """

    def __init__(self, *, budget_min: float, nominal: Plan, schedule: LrSchedule, val_images: int,
                 batch_size: int, final_eval: bool, spent_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic,
                 skip_steps: int = 3, first_plan_after: int = 10, window: int = 50,
                 check_interval: int = 10):
        if budget_min <= 0:
            raise ValueError(f"train.time must be positive, got {budget_min}")
        self.budget_s, self.nominal, self.schedule = budget_min * 60.0, nominal, schedule
        self.val_images, self.batch_size, self.final_eval = val_images, batch_size, final_eval
        self.clock, self.skip_steps = clock, skip_steps
        self.first_plan_after, self.window, self.check_interval = first_plan_after, window, check_interval
        self.spent_s = spent_s          # time before training, or of earlier sessions (resume)
        self.measured_steps = 0         # timed training iterations
        self.measured_s = 0.0           # their seconds
        self.eval_s: Optional[float] = None  # longest validation seen
        self.plan: Optional[Plan] = None
        self._logged_max_iter: Optional[int] = None  # the length of the last plan the log showed
        self._recent = deque(maxlen=window)  # the last measured step durations of this session
        self._start = self._last = 0.0
        self._fastest_step_s, self._session_turns = float("inf"), 0
        self._skip_left, self._seen_validation, self._next_eta, self._first_iteration = skip_steps, None, 0, 0

    # -- lifecycle --------------------------------------------------------------------------
    def before_train(self, trainer) -> None:
        self._start = self._last = self.clock()
        self._fastest_step_s, self._session_turns = float("inf"), 0
        self._skip_left, self._seen_validation = self.skip_steps, trainer.state.validation
        self._first_iteration = trainer.state.iteration
        if self.plan is None:  # a config max_iter shorter than the measuring must not end the run unplanned
            trainer.max_iter = max(trainer.max_iter,
                                   trainer.state.iteration + self.skip_steps + self.first_plan_after + 1)
        else:
            self._apply(trainer, self.plan)
            logger.info(f"time budget: resuming the plan of {self.plan.max_iter} iterations at "
                        f"{trainer.state.iteration}, {self.spent_s / 60:.2f} of {self.budget_s / 60:.2f} min "
                        f"spent")
            if self.measured_steps:  # re-plan with the stored costs: the budget may have changed
                self._replan(trainer)

    def after_step(self, trainer) -> None:
        self._observe(trainer, progressed=True)
        iteration = trainer.state.iteration
        if self.plan is None and self.measured_steps < self.first_plan_after:
            self._stop_if_out_of_time(trainer)
        elif self.plan is None or iteration % self.check_interval == 0:
            self._replan(trainer)
        if self.plan is not None and iteration >= self._next_eta:
            self._log_eta(iteration)

    def after_skipped_step(self, trainer) -> None:
        self._observe(trainer, progressed=False)

    def state_dict(self) -> Dict[str, Any]:
        plan = dataclasses.asdict(self.plan) if self.plan is not None else None
        return {"spent_s": self.elapsed(), "measured_steps": self.measured_steps,
                "measured_s": self.measured_s, "eval_s": self.eval_s, "plan": plan}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if not state:
            return
        self.spent_s, self.eval_s = float(state["spent_s"]), state.get("eval_s")
        self.measured_steps, self.measured_s = int(state["measured_steps"]), float(state["measured_s"])
        plan = state.get("plan")
        self.plan = Plan(**{**plan, "lr_steps": tuple(plan["lr_steps"])}) if plan else None

    # -- measuring --------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds spent by the run so far, earlier sessions included."""
        return self.spent_s + self.clock() - self._start

    def _observe(self, trainer, progressed: bool) -> None:
        now = self.clock()
        duration, self._last = now - self._last, now
        if self._session_turns > 0:  # the session's first turn carries the start-up
            self._fastest_step_s = min(self._fastest_step_s, duration)
        self._session_turns += 1
        validation = trainer.state.validation
        if validation is not None and validation is not self._seen_validation:
            self._seen_validation = validation
            self.eval_s = max(self.eval_s or 0.0, duration - self._step_s(fallback=0.0))
        elif self._skip_left > 0:
            self._skip_left -= 1
        else:
            self.measured_steps += int(progressed)
            self.measured_s += duration
            self._recent.append(duration)

    def _step_s(self, fallback: float) -> float:
        """Seconds per step: the mean of the recent window (a slowdown shows at the next check),
        or of every measured step while the window is less than half full (just resumed)."""
        if len(self._recent) >= max(1, self.window // 2):
            return sum(self._recent) / len(self._recent)
        return self.measured_s / self.measured_steps if self.measured_steps else fallback

    def _estimates(self, trainer, step_s: Optional[float] = None):
        """(elapsed, seconds per step, seconds per evaluation), the same on every rank: time means
        over ranks, the evaluation's the largest (only rank 0 validates). ``step_s``: instead of
        the measured mean."""
        if step_s is None:
            session_steps = max(1, trainer.state.iteration - self._first_iteration)
            step_s = self._step_s(fallback=(self.clock() - self._start) / session_steps)
        elapsed, step_s = all_reduce_mean(torch.tensor([self.elapsed(), step_s], dtype=torch.float64)).tolist()
        eval_s = torch.tensor([self._eval_estimate(step_s)], dtype=torch.float64)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(eval_s, op=dist.ReduceOp.MAX)
        return elapsed, step_s, float(eval_s)

    def _eval_estimate(self, step_s: float) -> float:
        """The longest validation seen; before one: as many seconds per image as a training step takes"""
        return self.eval_s if self.eval_s is not None else self.val_images * step_s / self.batch_size

    # -- planning ---------------------------------------------------------------------------
    def _stop_if_out_of_time(self, trainer) -> None:
        """Before the plan: end the run when one more step and the final evaluation no longer fit,
        costed at the fastest step so far but the first (which carries the start-up)."""
        fastest = self._fastest_step_s if self._fastest_step_s < float("inf") else 0.0
        elapsed, step_s, eval_s = self._estimates(trainer, step_s=fastest)
        if elapsed + step_s + (eval_s if self.final_eval else 0.0) > self.budget_s:
            self._adopt(trainer, scale_schedule(self.nominal, trainer.state.iteration))

    def _replan(self, trainer) -> None:
        elapsed, step_s, eval_s = self._estimates(trainer)
        planned = plan_length(budget_s=self.budget_s, nominal=self.nominal, done=trainer.state.iteration,
                              elapsed_s=elapsed, step_s=max(step_s, 1e-9), eval_s=eval_s,
                              final_eval=self.final_eval)
        current = self.plan.max_iter if self.plan is not None else None
        if current is None or planned < current or planned > current * (1.0 + GROW_TOLERANCE):
            self._adopt(trainer, scale_schedule(self.nominal, planned))
            logged = self._logged_max_iter
            if logged is None or abs(planned - logged) > LOG_TOLERANCE * logged:
                self._logged_max_iter, self._next_eta = planned, trainer.state.iteration
                logger.info(f"time budget {self.budget_s / 60:.2f} min: {1.0 / max(step_s, 1e-9):.3g} it/s "
                            f"measured over {self.measured_steps} iterations, evaluation about "
                            f"{eval_s:.1f} s; plan {self._describe(self.plan)}")

    def _adopt(self, trainer, plan: Plan) -> None:
        self.plan = plan
        self._apply(trainer, plan)

    def _apply(self, trainer, plan: Plan) -> None:
        """Make the trainer and its hooks follow ``plan``."""
        from yolact.engine.train.validation_hook import ValidationHook

        trainer.max_iter = plan.max_iter
        trainer.lr_at = dataclasses.replace(self.schedule, total_iters=plan.max_iter,
                                            warmup_iters=plan.warmup_iters, lr_steps=plan.lr_steps)
        for hook in trainer.hooks:
            if isinstance(hook, ValidationHook):
                hook.interval = plan.val_interval
            elif isinstance(hook, Checkpointer):
                hook.save_interval = plan.save_interval

    @staticmethod
    def _describe(plan: Plan) -> str:
        return (f"{plan.max_iter} iterations (warmup {plan.warmup_iters}, lr steps {list(plan.lr_steps)}, "
                f"validation every {plan.val_interval or 'never'}, "
                f"save every {plan.save_interval or 'never'})")

    def _log_eta(self, iteration: int) -> None:
        """One line per tenth of the plan: progress, time spent and the expected end."""
        self._next_eta = iteration + max(1, self.plan.max_iter // 10)
        spent = self.elapsed()
        step_s = self._step_s(fallback=0.0)
        final_s = self._eval_estimate(step_s) if self.final_eval else 0.0
        left = (self.plan.max_iter - iteration) * step_s + final_s
        end = datetime.datetime.now() + datetime.timedelta(seconds=left)
        logger.info(f"time budget: iteration {iteration}/{self.plan.max_iter}, {spent / 60:.2f} of "
                    f"{self.budget_s / 60:.2f} min spent, ETA {end:%H:%M:%S} ({left / 60:.2f} min left)")
