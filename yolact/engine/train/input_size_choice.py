"""``train.time_input_sizes``: under a time budget, the input size follows the data and the machine.

A larger input keeps more of small objects' pixels (the masks come from prototypes at a quarter of
the input) and costs iterations. On the hard shapes sets (README "Benchmarks"), with 15 minutes on
2 cores: where the budget trained 31 to 37 epochs at 224 px (a Xeon), 224 lost to 192 on the two
sets of larger objects and gained 0.02 mask AP on the small-object one; where it trained about 46
epochs at 256 px (an EPYC, twice as fast), 256 beat 192 by 0.1 mask AP on the small-object set
(median object 22 px at 192) and lost 0.06 and 0.09 on the sets whose median objects span 40 and
44 px at 192.

The rule: when the smallest candidate already gives the training set's median object
``object_px`` pixels, take it. Otherwise time a few training steps of each candidate on a
synthetic batch, estimate the epochs of the training set the budget holds at each, and among the
candidates that reach ``min_epochs`` take the smallest where the median object spans
``object_px`` pixels, else the largest; the smallest candidate when none reaches ``min_epochs``.
The seconds spent timing count against the budget.
"""
import dataclasses
import itertools
import logging
import math
import statistics
import time
from typing import Callable, Dict, Iterable, Mapping, NamedTuple, Optional, Sequence

import torch

from yolact.config import Config
from yolact.errors import YolactError
from yolact.utils.distributed import all_reduce_mean
from yolact.utils.synthetic import synthetic_targets
from yolact.utils.timing import time_interleaved_median_ms

__all__ = ["TRAIN_FRACTION", "planned_epochs", "choose_input_size", "median_object_side", "time_probe_steps",
           "with_input_size", "InputSizeChoice", "choose_time_input_size"]

logger = logging.getLogger("yolact")

# The share of the budget that an estimate gives to training steps timed without data loading:
# loading, validations and the final evaluation take the rest (about 7% on the hard sets' runs).
TRAIN_FRACTION = 0.9
PROBE_OBJECTS = 4  # objects per synthetic image
PROBE_WARMUP, PROBE_REPEATS = 2, 3  # untimed, then timed steps of each candidate, in turn


def planned_epochs(step_s: float, *, budget_s: float, batch_size: int, num_images: int,
                   train_fraction: float = TRAIN_FRACTION) -> float:
    """Epochs of ``num_images`` that ``train_fraction`` of ``budget_s`` trains at ``step_s`` per step."""
    return train_fraction * budget_s / step_s * batch_size / num_images


def choose_input_size(epochs_by_size: Mapping[int, float], min_epochs: float, *,
                      object_side: Optional[float] = None, object_px: Optional[float] = None) -> int:
    """The size for the run: among the sizes whose planned epochs reach ``min_epochs`` (the
    smallest size if none does), the smallest at which the median object spans ``object_px``
    pixels (``object_side`` is its side relative to the image), else the largest of them.
    Without ``object_px`` (or ``object_side``): the largest of them."""
    affordable = sorted(size for size, epochs in epochs_by_size.items() if epochs >= min_epochs)
    if not affordable:
        return min(epochs_by_size)
    if object_px is not None and object_side is not None:
        large_enough = [size for size in affordable if object_side * size >= object_px]
        if large_enough:
            return large_enough[0]
    return affordable[-1]


def median_object_side(records: Iterable) -> Optional[float]:
    """The median side (square root of the box area) of the non-crowd objects of ``records``
    (:class:`~yolact.data.validation.ImageRecord`), relative to their image's width and height,
    as the square input resizes them; None without objects."""
    sides = [math.sqrt((x2 - x1) / record.width * (y2 - y1) / record.height)
             for record in records for obj in record.objects if not obj.is_crowd
             for x1, y1, x2, y2 in (obj.box_xyxy,)]
    return statistics.median(sides) if sides else None


def time_probe_steps(make_step: Callable[[int], Callable[[], object]], sizes: Sequence[int], *,
                     device: torch.device, warmup: int = PROBE_WARMUP,
                     repeats: int = PROBE_REPEATS) -> Dict[int, float]:
    """Median seconds of one step at each size; ``make_step(size)`` returns the step. The steps
    run in turn (one of each per round), so a machine that speeds up or slows down meanwhile
    shifts every size alike; the medians are averaged over distributed ranks, so that every
    rank makes the same choice."""
    steps = {size: make_step(size) for size in sizes}
    median_ms = time_interleaved_median_ms(steps, repeats=repeats, warmup=warmup, device=device)
    seconds = all_reduce_mean(torch.tensor([median_ms[size] / 1000.0 for size in sizes], dtype=torch.float64))
    return dict(zip(sizes, seconds.tolist()))


def with_input_size(config: Config, size: int) -> Config:
    """A copy of ``config`` whose ``model.input_size`` is ``size``."""
    return dataclasses.replace(config, model=dataclasses.replace(config.model, input_size=size))


def _make_probe_step(config: Config, device: torch.device,
                     batch_per_rank: int) -> Callable[[int], Callable[[], object]]:
    """``size -> step``: one training step of ``config``'s model, loss and optimizer (at lr 0: the
    arithmetic of a real step on weights that stay put) on a synthetic batch at that size."""
    from yolact.build import build_criterion, build_model, build_optimizer
    from yolact.engine.runtime import checks_gradients, resolve_amp, set_training_memory_format
    from yolact.engine.train.trainer import Trainer

    train_cfg = config.train
    amp = resolve_amp(train_cfg.amp, device)

    def make_step(size: int) -> Callable[[], object]:
        sized = with_input_size(config, size)
        model = build_model(sized, pretrained=None)
        model.set_bn_frozen(batch_per_rank < train_cfg.freeze_bn_below)
        model.to(device)
        channels_last = set_training_memory_format(model, train_cfg.channels_last, device, amp)
        generator = torch.Generator().manual_seed(0)
        images = torch.randn(batch_per_rank, 3, size, size, generator=generator)
        targets = synthetic_targets(batch_per_rank, PROBE_OBJECTS, size, sized.model.num_classes, generator)
        trainer = Trainer(model=model, criterion=build_criterion(sized).to(device),
                          optimizer=build_optimizer(sized, model), batches=itertools.repeat((images, targets)),
                          device=device, lr_at=lambda iteration: 0.0, max_iter=10 ** 9, amp=amp,
                          scaler=torch.amp.GradScaler(device.type) if amp == "fp16" else None,
                          check_gradients=checks_gradients(device, amp), channels_last=channels_last)
        trainer.model.train()
        return trainer.run_step

    return make_step


class InputSizeChoice(NamedTuple):
    """What :func:`choose_time_input_size` decided."""
    config: Config  # with the chosen model.input_size
    seconds: float  # spent timing the candidates (0 when there was no choice)
    summary: str  # the estimates and the choice, one line ("" when there was no choice)


def choose_time_input_size(config: Config, *, records: Sequence, device: torch.device,
                           world_size: int = 1) -> InputSizeChoice:
    """``config`` with ``model.input_size`` chosen among ``train.time_input_sizes`` (unchanged when
    the list is empty or ``train.time`` is off), the seconds the choice took and its summary,
    which is also logged. The candidates are timed only when the smallest one is too small for
    the median object (``train.time_object_px``).

    ``records``: the training set's images (:class:`~yolact.data.validation.ImageRecord`);
    ``config.model.num_classes`` must be resolved.
    """
    train_cfg = config.train
    sizes = sorted(set(train_cfg.time_input_sizes))
    if train_cfg.time is None or not sizes:
        return InputSizeChoice(config, 0.0, "")
    if sizes[0] <= 0:
        raise YolactError(f"train.time_input_sizes must be positive sizes in px, got "
                          f"{list(train_cfg.time_input_sizes)}")
    if not train_cfg.time_min_epochs > 0:
        raise YolactError(f"train.time_min_epochs must be positive, got {train_cfg.time_min_epochs}")
    start = time.monotonic()
    object_side, object_px = median_object_side(records), train_cfg.time_object_px
    head = f"train.time_input_sizes {sizes}, {len(records)} training images in {train_cfg.time:g} min"
    if object_px is not None and object_side is not None and object_side * sizes[0] >= object_px:
        chosen = sizes[0]
        summary = (f"{head}: input {chosen} px, where the median object already spans "
                   f"{object_side * chosen:.0f} px (train.time_object_px {object_px:g})")
    else:
        step_s = time_probe_steps(_make_probe_step(config, device, train_cfg.batch_size // world_size), sizes,
                                  device=device)
        budget_s, min_epochs = train_cfg.time * 60.0, train_cfg.time_min_epochs
        epochs = {size: planned_epochs(seconds, budget_s=budget_s, batch_size=train_cfg.batch_size,
                                       num_images=len(records)) for size, seconds in step_s.items()}
        chosen = choose_input_size(epochs, min_epochs, object_side=object_side, object_px=object_px)
        estimates = ", ".join(f"{size} px {step_s[size]:.3f} s/step, {epochs[size]:.0f} epochs" for size in sizes)
        reason = _reason(chosen, epochs, min_epochs, object_side, object_px)
        summary = f"{head}: {estimates}; input {chosen} px, {reason}"
    logger.info(summary)
    return InputSizeChoice(with_input_size(config, chosen), time.monotonic() - start, summary)


def _reason(chosen: int, epochs: Mapping[int, float], min_epochs: float, object_side: Optional[float],
            object_px: Optional[float]) -> str:
    """Why :func:`choose_input_size` chose ``chosen``, in words."""
    if epochs[chosen] < min_epochs:
        return f"the smallest: none leaves {min_epochs:g} epochs"
    spans = f"the median object spans {object_side * chosen:.0f} px" if object_side is not None else "no objects"
    if object_px is not None and object_side is not None and object_side * chosen >= object_px:
        return f"the smallest with {min_epochs:g} epochs where {spans} (at least {object_px:g})"
    return f"the largest with {min_epochs:g} epochs ({spans})"
