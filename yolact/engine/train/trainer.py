"""The iteration-based training loop: one defensive step, then hooks (save, validate, stop)."""
import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional

import torch

from yolact.errors import YolactError
from yolact.utils.distributed import all_reduce_mean

__all__ = ["TrainState", "Trainer", "autocast_context"]

logger = logging.getLogger("yolact")


def autocast_context(device: torch.device, amp: str):
    """``torch.autocast`` for "bf16"/"fp16" on this device type, a no-op for "off"."""
    if amp == "off":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@dataclass
class TrainState:
    """What the loop carries between iterations (and into checkpoints)."""
    iteration: int = 0                 # iterations finished
    nonfinite_streak: int = 0          # non-finite losses in a row
    best_mask_ap: float = -1.0         # best validation mask AP so far
    stop_reason: Optional[str] = None  # set by a signal or the non-finite policy


@dataclass
class Trainer:
    """Runs ``model`` + ``criterion`` over ``batches`` until ``max_iter``.

    Hooks are called after each finished iteration as ``hook(trainer)``; they save,
    validate and log. ``lr_at(iteration)`` gives the learning rate of each step.
    """
    model: torch.nn.Module
    criterion: torch.nn.Module
    optimizer: torch.optim.Optimizer
    batches: Iterator
    device: torch.device
    lr_at: Callable[[int], float]
    max_iter: int
    amp: str = "off"
    scaler: Optional[torch.amp.GradScaler] = None
    grad_clip: Optional[float] = None
    max_nonfinite: int = 10
    channels_last: bool = False
    state: TrainState = field(default_factory=TrainState)
    hooks: List[Callable] = field(default_factory=list)
    on_step: Optional[Callable] = None      # on_step(iteration, scalars, data_time, step_time)
    on_nonfinite_stop: Optional[Callable] = None
    last_scalars: Dict[str, float] = field(default_factory=dict)

    def train(self) -> TrainState:
        """Loop until ``max_iter`` or a stop request; returns the final state."""
        self.model.train()
        with _stop_on_signals(self.state):
            while self.state.iteration < self.max_iter and self.state.stop_reason is None:
                self.run_step()
                for hook in self.hooks:
                    hook(self)
        return self.state

    def _next_batch(self):
        images, targets = next(self.batches)
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = [{k: (v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in t.items()}
                   for t in targets]
        return images, targets

    def run_step(self) -> None:
        """One iteration: lr, forward, loss, non-finite check, backward, clip, step."""
        iteration = self.state.iteration
        start = time.perf_counter()
        images, targets = self._next_batch()
        data_time = time.perf_counter() - start
        lr = self.lr_at(iteration)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with autocast_context(self.device, self.amp):
            outputs = self.model(images)
        outputs = {k: v.float() for k, v in outputs.items()}  # the loss always runs in float32
        losses = self.criterion(outputs, targets)
        total = sum(losses.values())
        self.optimizer.zero_grad(set_to_none=True)
        finite_everywhere = all_reduce_mean(torch.isfinite(total.detach()).float()) == 1  # ranks must agree
        if not finite_everywhere:
            self._handle_nonfinite(iteration, losses, targets)
            return
        self.state.nonfinite_streak = 0
        self._backward_and_step(total)
        self.state.iteration += 1
        logged = all_reduce_mean(torch.stack([v.detach() for v in losses.values()] + [total.detach()]))
        scalars = dict(zip(list(losses) + ["loss_total"], logged.tolist()))  # mean over ranks
        scalars["lr"] = lr
        self.last_scalars = scalars
        if self.on_step is not None:
            self.on_step(iteration, scalars, data_time, time.perf_counter() - start)

    def _backward_and_step(self, total: torch.Tensor) -> None:
        if self.scaler is not None:
            self.scaler.scale(total).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            total.backward()
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()

    def _handle_nonfinite(self, iteration: int, losses: Dict[str, torch.Tensor], targets) -> None:
        """Skip the step, say what happened, stop after ``max_nonfinite`` in a row."""
        self.state.nonfinite_streak += 1
        terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in losses.items())
        image_ids = [t.get("image_id") for t in targets]
        logger.warning(f"non-finite loss at iteration {iteration} ({terms}); image ids {image_ids}; step skipped "
                       f"({self.state.nonfinite_streak}/{self.max_nonfinite} in a row)")
        if self.state.nonfinite_streak >= self.max_nonfinite:
            self.state.stop_reason = "nonfinite"
            if self.on_nonfinite_stop is not None:
                self.on_nonfinite_stop(self)
            raise YolactError(f"training stopped at iteration {iteration}: {self.max_nonfinite} non-finite losses in "
                              f"a row (last: {terms}; image ids {image_ids}); the last good state is saved")


@contextlib.contextmanager
def _stop_on_signals(state: TrainState):
    """SIGINT/SIGTERM ask the loop to stop after the current step (a second SIGINT aborts)."""
    def request_stop(signum, frame):
        if signum == signal.SIGINT and state.stop_reason is not None:
            raise KeyboardInterrupt
        state.stop_reason = signal.Signals(signum).name
        logger.warning(f"{state.stop_reason} received: saving a checkpoint after this iteration")

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, request_stop)
    except ValueError:  # not the main thread: signals stay with the caller
        previous = {}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
