"""The reference's learning-rate schedule: linear warmup, then step decay (SPEC §8)."""
from typing import Sequence, Tuple

__all__ = ["learning_rate_at", "autoscale_schedule"]


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
        return (base_lr - warmup_init_lr) * (iteration / warmup_iters) + warmup_init_lr
    return base_lr * gamma ** passed_steps


def autoscale_schedule(*, batch_size: int, base_batch_size: int, lr: float, max_iter: int,
                       lr_steps: Sequence[int]) -> Tuple[float, int, Tuple[int, ...]]:
    """Scale lr up and the iteration counts down by ``batch_size / base_batch_size``.

    The reference multiplies lr by the factor and floor-divides max_iter and each step by it
    (warmup is left alone). Returns ``(lr, max_iter, lr_steps)`` with integer iterations.
    """
    factor = batch_size / base_batch_size
    return lr * factor, int(max_iter // factor), tuple(int(step // factor) for step in lr_steps)
