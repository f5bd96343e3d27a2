"""The hook lifecycle of the training loop, and the checkpoint hooks (rank 0 does the writing).

A hook is called by :class:`~yolact.engine.train.trainer.Trainer` in this order::

    before_train(trainer)
    for each iteration:
        before_step(trainer)
        <one step: batch, forward, loss, backward, optimizer>
        after_step(trainer)            # a step was taken: state.iteration counts it
        or after_skipped_step(trainer) # a non-finite loss (or checked gradient): no update, state.nonfinite_streak grew
    after_train(trainer)               # always, also after a stop or an error (see TrainState)

Hooks run in the order of the trainer's list. A hook may ask the loop to stop by setting
``trainer.state.stop_reason`` (the loop checks it before each step). A time budget plans in
``before_train`` and checks in ``before_step``; an EMA of the weights updates in ``after_step``.
A hook whose ``state_dict()`` is not empty has it saved in the checkpoint (key ``hooks``, by class
name; plain containers and tensors only) and handed back to ``load_state_dict`` on resume.
"""
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from yolact.config import Config, config_to_dict
from yolact.engine.checkpoint import CHECKPOINT_FORMAT, gather_rng_states, save_atomic
from yolact.engine.train.run_folder import LAST_CHECKPOINT

__all__ = ["HookBase", "Checkpointer", "BestCheckpointer", "checkpoints_to_prune", "hook_states", "unwrap",
           "interval_due", "last_multiple"]

logger = logging.getLogger("yolact")


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside a DistributedDataParallel wrapper."""
    return getattr(model, "module", model)


def interval_due(iteration: int, last: int, interval: int, max_iter: int) -> bool:
    """Whether a periodic action (a save, a validation) is due at ``iteration``: ``interval``
    iterations after the ``last`` one (0: never), and not at ``max_iter``, which has its own, nor
    less than a tenth of an interval before it.

    Counting from the last action gives a fixed interval's multiples, and no cluster of actions
    when ``train.time`` re-plans the interval. The tail rule keeps a re-plan that moves the end to
    just after a multiple (a plan of 2850 iterations validating at 2845) from evaluating and
    saving twice within a few iterations.
    """
    return bool(interval) and iteration - last >= interval and (max_iter - iteration) * 10 >= interval


def last_multiple(iteration: int, interval: int) -> int:
    """The last multiple of ``interval`` at or below ``iteration`` (``iteration`` itself when
    ``interval`` is 0): where a resumed run puts its last periodic action."""
    return iteration - iteration % interval if interval else iteration


class HookBase:
    """A training hook: override the moments it acts at (each is a no-op here)."""

    def before_train(self, trainer) -> None:
        pass

    def before_step(self, trainer) -> None:
        pass

    def after_step(self, trainer) -> None:
        pass

    def after_skipped_step(self, trainer) -> None:
        pass

    def after_train(self, trainer) -> None:
        pass

    def state_dict(self) -> Dict[str, Any]:
        """What this hook needs to continue a resumed run (empty: nothing)."""
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        pass


def hook_states(hooks) -> Dict[str, Dict[str, Any]]:
    """``{class name: state_dict()}`` of the hooks that have a state."""
    states = {type(hook).__name__: hook.state_dict() for hook in hooks}
    return {name: state for name, state in states.items() if state}


class Checkpointer(HookBase):
    """Builds and writes training checkpoints to ``run_dir/weights/``.

    ``last.pth`` is rewritten atomically at every save and at the end of training (also after a
    signal or the non-finite stop, not after an error); every ``save_interval`` a copy
    ``iter_<iteration>.pth`` is kept, the newest ``keep_checkpoints`` of them (0: all).
    Like validation, a save comes ``save_interval`` iterations after the last one: the multiples
    of a fixed interval, and no cluster of saves when ``train.time`` re-plans the interval.
    """

    def __init__(self, run_dir: Optional[Path], *, config: Config, class_names: List[str], category_ids: List[int],
                 save_interval: int, enabled: bool = True, keep_checkpoints: int = 0):  # run_dir None off rank 0
        self.weights_dir = Path(run_dir) / "weights" if run_dir is not None else None
        self.config, self.class_names, self.category_ids = config, class_names, category_ids
        self.keep_checkpoints = keep_checkpoints
        self.save_interval, self.enabled = save_interval, enabled and self.weights_dir is not None
        self._last_save = 0  # the iteration of the last periodic save (or of the start)
        if self.enabled and self.weights_dir.is_dir():
            for stale in self.weights_dir.glob(".*.tmp*"):  # left by a process killed mid-write
                stale.unlink()
            for stale in self.weights_dir.glob(".*.link*"):
                stale.unlink()

    def payload(self, trainer, metrics: Optional[Dict[str, float]] = None, rng: Optional[List] = None) -> Dict:
        """The checkpoint dict; ``rng``: every rank's generators (default: gathered now)."""
        state = trainer.state
        payload = {
            "format": CHECKPOINT_FORMAT,
            "model": unwrap(trainer.model).state_dict(),
            "optimizer": trainer.optimizer.state_dict(),
            "scaler": trainer.scaler.state_dict() if trainer.scaler is not None else None,
            "iteration": state.iteration,
            "best_mask_ap": state.best_mask_ap,
            "rng": rng if rng is not None else gather_rng_states(_device_of(trainer)),
            "config": config_to_dict(self.config),
            "class_names": list(self.class_names),
            "category_ids": list(self.category_ids),
            "metrics": dict(metrics or {}),
        }
        states = hook_states(trainer.hooks)
        if states:
            payload["hooks"] = states
        return payload

    def save(self, trainer, name: str = LAST_CHECKPOINT, metrics=None) -> Optional[Path]:
        """Write ``weights/<name>`` (and refresh last.pth when ``name`` is another file).

        Every rank calls it at the same points: each rank's generators are gathered to rank 0,
        which alone writes.
        """
        rng = gather_rng_states(_device_of(trainer))
        if not self.enabled:
            return None
        payload = self.payload(trainer, metrics, rng=rng)
        path = save_atomic(payload, self.weights_dir / name)
        if name != LAST_CHECKPOINT:
            _replace_with_link(path, self.weights_dir / LAST_CHECKPOINT)
        return path

    def before_train(self, trainer) -> None:
        self._last_save = last_multiple(trainer.state.iteration, self.save_interval)

    def after_step(self, trainer) -> None:
        iteration = trainer.state.iteration
        if interval_due(iteration, self._last_save, self.save_interval, trainer.max_iter):
            self._last_save = iteration
            self.save(trainer, f"iter_{iteration:07d}.pth")
            logger.debug(f"checkpoint at iteration {iteration}")
            for path in checkpoints_to_prune(self.weights_dir, self.keep_checkpoints) if self.enabled else ():
                path.unlink()

    def after_train(self, trainer) -> None:
        if not trainer.state.crashed:
            self.save(trainer)


class BestCheckpointer(HookBase):
    """Keeps ``best.pth``: the weights of the best validation mask AP (``trainer.state.validation``).

    Place it after the :class:`~yolact.engine.train.validation_hook.ValidationHook` in the list.
    """

    def __init__(self, checkpointer: Checkpointer):
        self.checkpointer = checkpointer
        self._seen = None

    def after_step(self, trainer) -> None:
        result = trainer.state.validation
        if result is None or result is self._seen:
            return
        self._seen = result
        mask_ap = result.metrics.get("segm/AP", -1.0)
        if mask_ap > trainer.state.best_mask_ap:
            trainer.state.best_mask_ap = mask_ap
            self.checkpointer.save(trainer, "best.pth", result.metrics)

    def after_train(self, trainer) -> None:
        self.after_step(trainer)  # the final evaluation


def _device_of(trainer) -> torch.device:
    return torch.device(getattr(trainer, "device", "cpu"))


def checkpoints_to_prune(weights_dir: Path, keep: int) -> List[Path]:
    """The periodic ``iter_*.pth`` files of ``weights_dir`` beyond the newest ``keep`` (0 keeps all).

    Newest means the highest iteration in the name; best.pth and last.pth (whatever file they
    share bytes with) are never in the list.
    """
    periodic = sorted(Path(weights_dir).glob("iter_*.pth"))  # zero-padded: name order is iteration order
    return periodic[:-keep] if keep > 0 else []


def _replace_with_link(source: Path, target: Path) -> None:
    """Point ``target`` at ``source``'s bytes atomically (hard link, or copy where links fail)."""
    tmp = target.with_name(f".{target.name}.link{os.getpid()}")
    try:
        os.link(source, tmp)
    except OSError:
        save_atomic(torch.load(source, map_location="cpu", weights_only=True), tmp)
    os.replace(tmp, target)
