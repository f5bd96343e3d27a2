"""Warnings for a training schedule that does not fit its own length (said once, before training)."""
import logging
from typing import List, Sequence

from yolact.config import Config

__all__ = ["schedule_warnings", "warn_about_schedule"]

logger = logging.getLogger("yolact")


def schedule_warnings(*, max_iter: int, warmup_iters: int, lr_steps: Sequence[int], val_interval: int = 0,
                      save_interval: int = 0) -> List[str]:
    """What does not fit in ``max_iter`` iterations (all counts after autoscaling); empty when all fits."""
    problems = []
    if warmup_iters >= max_iter:
        problems.append(f"train.warmup_iters={warmup_iters} is not below max_iter={max_iter}: the learning rate "
                        f"never reaches train.lr")
    beyond = [step for step in lr_steps if step >= max_iter]
    if beyond:
        problems.append(f"train.lr_steps {beyond} are at or beyond max_iter={max_iter}: "
                        f"{'that decay never happens' if len(beyond) == 1 else 'those decays never happen'}")
    if val_interval >= max_iter:
        problems.append(f"train.val_interval={val_interval} is not below max_iter={max_iter}: only the final "
                        f"validation runs")
    if save_interval >= max_iter:
        problems.append(f"train.save_interval={save_interval} is not below max_iter={max_iter}: only last.pth "
                        f"is written")
    return problems


def warn_about_schedule(config: Config) -> List[str]:
    """Log :func:`schedule_warnings` for ``config`` (after autoscaling to the batch size); returns them."""
    from yolact.build import _scaled_schedule  # the one place that scales the schedule

    _, max_iter, lr_steps = _scaled_schedule(config)
    train_cfg = config.train
    # lr_steps only act in the step schedule; a warmup_fraction replaces warmup_iters
    lr_steps = lr_steps if train_cfg.lr_schedule == "step" else []
    warmup_iters = train_cfg.warmup_iters if train_cfg.warmup_fraction is None else 0
    problems = schedule_warnings(max_iter=max_iter, warmup_iters=warmup_iters, lr_steps=lr_steps,
                                 val_interval=train_cfg.val_interval, save_interval=train_cfg.save_interval)
    scaled = " (after autoscaling to the batch size)" if max_iter != train_cfg.max_iter else ""
    for problem in problems:
        logger.warning(f"schedule{scaled}: {problem}")
    return problems
