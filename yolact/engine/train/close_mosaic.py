"""``data.augment.close_mosaic_fraction``: the last iterations train on unmixed images.

Ultralytics' ``close_mosaic`` as a fraction of the run: when the iteration reaches
``max_iter - round(fraction * max_iter)`` of the current plan (with ``train.time`` the planned
length, which may still move), the training dataset's mixer (mosaic and copy-paste) is removed
and the batches are drawn again from that iteration, so that the final weights learn from images
as the evaluation sees them. The loader is rebuilt because worker processes hold their own copy
of the dataset. A resumed run past the switch makes it at its first step; since every sample is
fixed by (seed, epoch, index), it then sees exactly the batches of an uninterrupted run.
"""
import logging
from typing import Callable, Iterator

from yolact.engine.train.hooks import HookBase

__all__ = ["CloseMosaicHook", "close_mosaic_iteration"]

logger = logging.getLogger("yolact")


def close_mosaic_iteration(max_iter: int, fraction: float) -> int:
    """The first iteration trained without mixing: ``max_iter - round(fraction * max_iter)``."""
    return max_iter - round(fraction * max_iter)


class CloseMosaicHook(HookBase):
    """Removes ``dataset.mixer`` for the last ``fraction`` of ``trainer.max_iter``.

    Args:
        fraction: in (0, 1).
        dataset: the training dataset (its ``mixer`` attribute is set to None).
        make_batches: ``start_iteration -> iterator of batches`` from that iteration on.
        planned: whether ``trainer.max_iter`` is the run's length yet (with ``train.time`` it is a
            placeholder until the time budget has planned); no switch before.
    """

    def __init__(self, fraction: float, dataset, make_batches: Callable[[int], Iterator],
                 planned: Callable[[], bool] = lambda: True):
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"close_mosaic_fraction must be in (0, 1), got {fraction}")
        self.fraction, self.dataset, self.make_batches, self.planned = fraction, dataset, make_batches, planned
        self.closed_at = None  # the iteration of the switch, once made

    def before_step(self, trainer) -> None:
        iteration = trainer.state.iteration
        if (self.closed_at is not None or not self.planned()
                or iteration < close_mosaic_iteration(trainer.max_iter, self.fraction)):
            return
        self.dataset.mixer = None
        trainer.batches = self.make_batches(iteration)
        self.closed_at = iteration
        logger.info(f"iteration {iteration}: mosaic and copy-paste off for the last "
                    f"{trainer.max_iter - iteration} of {trainer.max_iter} iterations "
                    f"(data.augment.close_mosaic_fraction {self.fraction})")
