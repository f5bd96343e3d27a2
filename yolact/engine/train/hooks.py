"""Trainer hooks: periodic checkpoints and periodic validation (rank 0 does the writing)."""
import logging
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from yolact.config import Config, config_to_dict
from yolact.engine.checkpoint import CHECKPOINT_FORMAT, capture_rng_state, save_atomic
from yolact.engine.train.run_folder import LAST_CHECKPOINT

__all__ = ["Checkpointer", "ValidationHook", "unwrap"]

logger = logging.getLogger("yolact")


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside a DistributedDataParallel wrapper."""
    return getattr(model, "module", model)


class Checkpointer:
    """Builds and writes training checkpoints to ``run_dir/weights/``.

    ``last.pth`` is rewritten atomically at every save; every ``save_interval`` a copy
    ``iter_<iteration>.pth`` is kept; ``best.pth`` holds the best validation mask AP.
    """

    def __init__(self, run_dir: Path, *, config: Config, class_names: List[str], category_ids: List[int],
                 save_interval: int, enabled: bool = True):  # run_dir None on ranks other than 0
        self.weights_dir = Path(run_dir) / "weights" if run_dir is not None else None
        self.config, self.class_names, self.category_ids = config, class_names, category_ids
        self.save_interval, self.enabled = save_interval, enabled
        if enabled and self.weights_dir is not None and self.weights_dir.is_dir():
            for stale in self.weights_dir.glob(".*.tmp*"):  # left by a process killed mid-write
                stale.unlink()
            for stale in self.weights_dir.glob(".*.link*"):
                stale.unlink()

    def payload(self, trainer, metrics: Optional[Dict[str, float]] = None) -> Dict:
        state = trainer.state
        return {
            "format": CHECKPOINT_FORMAT,
            "model": unwrap(trainer.model).state_dict(),
            "optimizer": trainer.optimizer.state_dict(),
            "scaler": trainer.scaler.state_dict() if trainer.scaler is not None else None,
            "iteration": state.iteration,
            "best_mask_ap": state.best_mask_ap,
            "rng": capture_rng_state(),
            "config": config_to_dict(self.config),
            "class_names": list(self.class_names),
            "category_ids": list(self.category_ids),
            "metrics": dict(metrics or {}),
        }

    def save(self, trainer, name: str = LAST_CHECKPOINT, metrics=None) -> Optional[Path]:
        """Write ``weights/<name>`` (and refresh last.pth when ``name`` is another file)."""
        if not self.enabled:
            return None
        payload = self.payload(trainer, metrics)
        path = save_atomic(payload, self.weights_dir / name)
        if name != LAST_CHECKPOINT:
            _replace_with_link(path, self.weights_dir / LAST_CHECKPOINT)
        return path

    def __call__(self, trainer) -> None:
        iteration = trainer.state.iteration
        if self.save_interval and iteration % self.save_interval == 0 and iteration < trainer.max_iter:
            self.save(trainer, f"iter_{iteration:07d}.pth")
            logger.debug(f"checkpoint at iteration {iteration}")


def _replace_with_link(source: Path, target: Path) -> None:
    """Point ``target`` at ``source``'s bytes atomically (hard link, or copy where links fail)."""
    tmp = target.with_name(f".{target.name}.link{os.getpid()}")
    try:
        os.link(source, tmp)
    except OSError:
        save_atomic(torch.load(source, map_location="cpu", weights_only=True), tmp)
    os.replace(tmp, target)


class ValidationHook:
    """Every ``interval`` iterations: evaluate, log AP and pictures, keep ``best.pth``."""

    def __init__(self, *, interval: int, evaluate: Callable[[torch.nn.Module], Dict[str, float]],
                 visualize: Callable[[torch.nn.Module], list], monitor, checkpointer: Checkpointer,
                 is_main: bool):
        self.interval, self.evaluate, self.visualize = interval, evaluate, visualize
        self.monitor, self.checkpointer, self.is_main = monitor, checkpointer, is_main
        self.last_metrics: Dict[str, float] = {}

    def run(self, trainer) -> Dict[str, float]:
        """Validate now (rank 0 only; other ranks skip) and return the metrics."""
        if not self.is_main:
            return {}
        model = unwrap(trainer.model)
        metrics = self.evaluate(model)
        images = self.visualize(model)
        iteration = trainer.state.iteration
        self.monitor.log_validation(iteration, metrics, images)
        self.last_metrics = metrics
        mask_ap = metrics.get("segm/AP", -1.0)
        if mask_ap > trainer.state.best_mask_ap:
            trainer.state.best_mask_ap = mask_ap
            self.checkpointer.save(trainer, "best.pth", metrics)
        model.train()
        return metrics

    def __call__(self, trainer) -> None:
        iteration = trainer.state.iteration
        if self.interval and iteration % self.interval == 0 and iteration < trainer.max_iter:
            self.run(trainer)
