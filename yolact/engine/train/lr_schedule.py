"""Learning-rate schedules: linear warmup, then the reference's step decay (SPEC §8), or cosine or
linear decay to a final fraction of the base rate."""
import math
from dataclasses import dataclass
from typing import Sequence, Tuple

__all__ = ["LrSchedule", "learning_rate_at", "autoscale_schedule", "SCHEDULE_KINDS"]

SCHEDULE_KINDS = ("step", "cosine", "linear")


def learning_rate_at(iteration: int, *, base_lr: float, warmup_init_lr: float, warmup_iters: int,
                     lr_steps: Sequence[int], gamma: float) -> float:
    """Learning rate used for the step of ``iteration`` (0-based).

    During warmup (``iteration <= warmup_iters``) the rate grows linearly from
    ``warmup_init_lr`` to ``base_lr``; afterwards it is ``base_lr * gamma**k`` where ``k`` counts
    the steps already reached (``iteration >= step``), as the reference evaluates it before each
    step. A pure function of the iteration, so a resumed run continues the same curve.
    """
    passed_steps = sum(1 for step in lr_steps if iteration >= step)
    if passed_steps == 0 and warmup_iters > 0 and iteration <= warmup_iters:
        return _warmup(iteration, base_lr, warmup_init_lr, warmup_iters)
    return base_lr * gamma ** passed_steps


def _warmup(iteration: int, base_lr: float, warmup_init_lr: float, warmup_iters: int) -> float:
    return (base_lr - warmup_init_lr) * (iteration / warmup_iters) + warmup_init_lr


@dataclass(frozen=True)
class LrSchedule:
    """``schedule(iteration) -> lr``: a pure function of the iteration, so resuming continues it.

    ``kind="step"`` is :func:`learning_rate_at` (the reference). ``"cosine"`` and ``"linear"``
    warm up the same way (``iteration <= warmup_iters``), then decay from ``base_lr`` at
    ``warmup_iters`` to ``base_lr * final_lr_ratio`` at ``total_iters`` (and stay there).
    A time budget re-plans a run by replacing ``total_iters``, ``warmup_iters`` and ``lr_steps``.
    """
    kind: str
    base_lr: float
    warmup_init_lr: float
    warmup_iters: int
    total_iters: int
    lr_steps: Tuple[int, ...] = ()
    gamma: float = 0.1
    final_lr_ratio: float = 0.01

    def __post_init__(self):
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(f"lr schedule must be one of {SCHEDULE_KINDS}, got {self.kind!r}")

    def __call__(self, iteration: int) -> float:
        if self.kind == "step":
            return learning_rate_at(iteration, base_lr=self.base_lr, warmup_init_lr=self.warmup_init_lr,
                                    warmup_iters=self.warmup_iters, lr_steps=self.lr_steps, gamma=self.gamma)
        if self.warmup_iters > 0 and iteration <= self.warmup_iters:
            return _warmup(iteration, self.base_lr, self.warmup_init_lr, self.warmup_iters)
        decay_iters = max(1, self.total_iters - self.warmup_iters)
        progress = min(1.0, max(0.0, (iteration - self.warmup_iters) / decay_iters))
        final_lr = self.base_lr * self.final_lr_ratio
        if self.kind == "cosine":
            return final_lr + (self.base_lr - final_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return final_lr + (self.base_lr - final_lr) * (1.0 - progress)


def autoscale_schedule(*, batch_size: int, base_batch_size: int, lr: float, max_iter: int,
                       lr_steps: Sequence[int]) -> Tuple[float, int, Tuple[int, ...]]:
    """Scale lr up and the iteration counts down by ``batch_size / base_batch_size``.

    The reference multiplies lr by the factor and floor-divides max_iter and each step by it
    (warmup is left alone). Returns ``(lr, max_iter, lr_steps)`` with integer iterations.
    """
    factor = batch_size / base_batch_size
    return lr * factor, int(max_iter // factor), tuple(int(step // factor) for step in lr_steps)
