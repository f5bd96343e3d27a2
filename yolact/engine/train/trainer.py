"""The iteration-based training loop: one defensive step, with hooks around it (save, validate, log)."""
import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, Optional, Sequence

import torch

from yolact.data.uint8_images import normalize_on_device
from yolact.engine.runtime import autocast
from yolact.errors import YolactError
from yolact.modeling.maskiou_head import post_forward_heads
from yolact.utils.distributed import all_reduce_mean

__all__ = ["TrainState", "Trainer"]

logger = logging.getLogger("yolact")

_PLURALS = {"loss": "losses", "gradient": "gradients"}


@dataclass
class TrainState:
    """What the loop carries between iterations; ``iteration`` and ``best_mask_ap`` go into checkpoints."""
    iteration: int = 0                 # iterations finished
    nonfinite_streak: int = 0          # non-finite losses (or checked gradients) in a row
    best_mask_ap: float = -1.0         # best validation mask AP so far
    stop_reason: Optional[str] = None  # set by a signal, the non-finite policy or a hook
    crashed: bool = False              # an exception left the loop (hooks' after_train still run)
    validation: Optional[Any] = None   # the last ValidationResult (train/validation_hook.py), if any


@dataclass
class Trainer:
    """Runs ``model`` + ``criterion`` over ``batches`` until ``max_iter``, calling ``hooks``.

    The hook lifecycle is documented in :mod:`yolact.engine.train.hooks`. ``lr_at(iteration)``
    gives the learning rate of each step. After each step ``last_scalars`` holds ``lr``,
    ``data_time`` and ``step_time`` (s), and, every ``log_interval`` iterations and at the last
    one, the mean over ranks of each weighted loss term, ``loss_total`` and each unweighted term
    (``unweighted/loss_*``, the term divided by ``loss_weights[name]``): the losses cost an
    all-reduce and a host sync, so they are read only when logged.

    Each step makes one host sync of its own: one all-reduce of ``[loss finite, stop asked]``,
    which makes every rank skip a non-finite step together and stop together after SIGINT/SIGTERM
    reached any of them (the signal is agreed at the next step, which completes).

    Args:
        loss_weights: the criterion's weight of each term (default: ``criterion.loss_weights``).
        grad_clip: clip the gradients' global norm to this (None: off).
        max_nonfinite: stop (YolactError, after the hooks' ``after_train``) after this many
            non-finite losses in a row; each is skipped without an update.
        check_gradients: also skip (and count among ``max_nonfinite``) a step whose gradients are
            not all finite though its loss is: one more host sync, so launch sets it only where
            that is free and a kernel has been caught at it, bf16 autocast on a CPU (README "On a
            CPU with AMX"). After DDP's all-reduce every rank holds the same gradients, so all
            ranks skip together. Not with a ``scaler``: fp16's GradScaler skips such steps on its own.
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
    check_gradients: bool = False
    channels_last: bool = False
    log_interval: int = 1
    hooks: Sequence = ()
    state: TrainState = field(default_factory=TrainState)
    loss_weights: Optional[Dict[str, float]] = None
    last_scalars: Dict[str, float] = field(default_factory=dict)
    _nonfinite_error: Optional[str] = field(default=None, init=False, repr=False)
    _signal_name: Optional[str] = field(default=None, init=False, repr=False)  # this rank's, not yet agreed

    def __post_init__(self):
        if self.loss_weights is None:
            self.loss_weights = dict(getattr(self.criterion, "loss_weights", {}))

    def train(self) -> TrainState:
        """Loop until ``max_iter`` or a stop request; returns the final state."""
        self.model.train()
        self._call("before_train")
        try:
            with _stop_on_signals(self):
                while self.state.iteration < self.max_iter and self.state.stop_reason is None:
                    self._call("before_step")
                    self._call("after_step" if self.run_step() else "after_skipped_step")
        except BaseException:
            self.state.crashed = True
            raise
        finally:
            self._call("after_train")
        if self._nonfinite_error is not None:
            raise YolactError(self._nonfinite_error)
        return self.state

    def _call(self, moment: str) -> None:
        for hook in self.hooks:
            getattr(hook, moment)(self)

    def _next_batch(self):
        images, targets = next(self.batches)
        images = normalize_on_device(images.to(self.device, non_blocking=True))  # uint8 -> normalised float
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = [{k: (v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in t.items()}
                   for t in targets]
        return images, targets

    def run_step(self) -> bool:
        """One iteration: lr, forward, loss, non-finite check, backward, gradient check, clip, step.

        Returns whether a step was taken (False: a non-finite loss or checked gradient, skipped).
        """
        iteration = self.state.iteration
        start = time.perf_counter()
        images, targets = self._next_batch()
        data_time = time.perf_counter() - start
        lr = self.lr_at(iteration)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with autocast(self.device, self.amp):
            outputs = self.model(images)
        outputs = {k: v.float() if torch.is_tensor(v) else v for k, v in outputs.items()}  # loss in float32
        losses = self.criterion(outputs, targets, **post_forward_heads(self.model))  # YOLACT++: + its head
        total = sum(losses.values())
        self.optimizer.zero_grad(set_to_none=True)
        finite_everywhere, stop_anywhere = self._agree(total)
        if stop_anywhere and self.state.stop_reason is None:
            self.state.stop_reason = self._signal_name or "a signal on another rank"
        if not finite_everywhere:
            self._handle_nonfinite(iteration, losses, targets)
            return False
        if not self._backward_and_step(total):
            self._handle_nonfinite(iteration, losses, targets, what="gradient")
            return False
        self.state.nonfinite_streak = 0
        self.state.iteration += 1
        scalars = {}
        if self.state.iteration % max(1, self.log_interval) == 0 or self.state.iteration >= self.max_iter:
            scalars = self._loss_scalars(losses, total)
        scalars.update(lr=lr, data_time=data_time, step_time=time.perf_counter() - start)
        self.last_scalars = scalars
        return True

    def _agree(self, total: torch.Tensor):
        """-> (loss finite on every rank, a rank was asked to stop): one all-reduce, one sync."""
        finite = torch.isfinite(total.detach()).float()
        stop = finite.new_full((), float(self._signal_name is not None))  # a fill, not a host-to-device copy
        flags = torch.stack([finite, stop])
        finite, stop = all_reduce_mean(flags).tolist()  # means over ranks
        return finite == 1.0, stop > 0.0

    def _loss_scalars(self, losses: Dict[str, torch.Tensor], total: torch.Tensor) -> Dict[str, float]:
        """Weighted and unweighted terms and ``loss_total``, each the mean over ranks."""
        logged = all_reduce_mean(torch.stack([v.detach() for v in losses.values()] + [total.detach()]))
        scalars = dict(zip(list(losses) + ["loss_total"], logged.tolist()))
        scalars.update({f"unweighted/{name}": scalars[name] / weight
                        for name, weight in self.loss_weights.items() if name in losses and weight})
        return scalars

    def _backward_and_step(self, total: torch.Tensor) -> bool:
        """Backward and (unless ``check_gradients`` finds a non-finite gradient) the update; whether it was made."""
        if self.scaler is not None:
            self.scaler.scale(total).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            total.backward()
        if self.check_gradients and self.scaler is None and not self._gradients_finite():
            return False  # (a GradScaler skips such a step itself, and lowers its scale)
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return True

    def _gradients_finite(self) -> bool:
        """Whether every parameter's gradient is finite (their global 2-norm is; one host sync)."""
        gradients = [p.grad for p in self.model.parameters() if p.grad is not None]
        return bool(torch.isfinite(torch.nn.utils.get_total_norm(gradients)))

    def _handle_nonfinite(self, iteration: int, losses: Dict[str, torch.Tensor], targets, what: str = "loss") -> None:
        """Skip the step, say what happened (a non-finite ``what``), stop after ``max_nonfinite`` in a row."""
        self.state.nonfinite_streak += 1
        terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in losses.items())
        image_ids = [t.get("image_id") for t in targets]
        logger.warning(f"non-finite {what} at iteration {iteration} ({terms}); image ids {image_ids}; step skipped "
                       f"({self.state.nonfinite_streak}/{self.max_nonfinite} in a row)")
        if self.state.nonfinite_streak >= self.max_nonfinite:
            self.state.stop_reason = "nonfinite"
            self._nonfinite_error = (f"training stopped at iteration {iteration}: {self.max_nonfinite} non-finite "
                                     f"{_PLURALS[what]} in a row (last: {terms}; image ids {image_ids}); the last good state "
                                     f"is saved")


@contextlib.contextmanager
def _stop_on_signals(trainer: Trainer):
    """SIGINT/SIGTERM ask every rank to stop after the next step's agreement (a second SIGINT
    aborts)."""
    def request_stop(signum, frame):
        if signum == signal.SIGINT and trainer._signal_name is not None:
            raise KeyboardInterrupt
        trainer._signal_name = signal.Signals(signum).name
        logger.warning(f"{trainer._signal_name} received: saving a checkpoint after the next iteration")

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
