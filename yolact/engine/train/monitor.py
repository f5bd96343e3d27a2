"""Training monitoring as a hook: smoothed losses, a tqdm bar, TensorBoard scalars/images, metrics.csv, plots."""
import logging
import math
import time
from collections import deque
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from yolact.engine.train.hooks import HookBase
from yolact.engine.train.metrics_file import MetricsFile

__all__ = ["SmoothedValue", "TrainMonitor"]


class SmoothedValue:
    """Moving average over a fixed window of recent values."""

    def __init__(self, window: int = 20):
        self.values = deque(maxlen=window)

    def update(self, value: float) -> None:
        self.values.append(float(value))

    @property
    def average(self) -> float:
        return float(np.mean(self.values)) if self.values else float("nan")


class TrainMonitor(HookBase):
    """Everything a person watches during training; a no-op on ranks other than 0.

    As a hook it logs ``trainer.last_scalars`` after each step and each new
    ``trainer.state.validation``; place it after the validation hook. It opens its files in
    ``before_train`` and closes them in ``after_train``. metrics.csv is described in
    :mod:`~yolact.engine.train.metrics_file`, the plots in :mod:`~yolact.engine.train.run_plots`
    (written to ``run_dir/plots/`` at each validation and at the end).

    Args:
        run_dir: the run folder (events, metrics.csv, train.log and plots/ go there); None disables.
        log_interval: iterations between scalar writes, csv rows and log lines.
        enabled: False on non-zero ranks.
        plots: write the plots (matplotlib).
        labels_dataset: a COCO dataset whose labels.jpg is drawn at the start (None: none).
        header_notes: lines added to train.log's header (e.g. the input size a time budget chose).
    """

    def __init__(self, run_dir: Optional[Path], *, log_interval: int, enabled: bool = True, progress: bool = True,
                 plots: bool = True, labels_dataset=None, header_notes=()):
        self.enabled = enabled and run_dir is not None
        self.run_dir, self.progress, self.plots = run_dir, progress, plots
        self.labels_dataset = labels_dataset
        self.header_notes = list(header_notes)
        self.log_interval = max(1, log_interval)
        self.smoothed: Dict[str, SmoothedValue] = {}
        self.logger = logging.getLogger("yolact")
        self.writer = self.bar = self.metrics_file = None
        self._logged_validation = None

    def before_train(self, trainer) -> None:
        self.open(start_iteration=trainer.state.iteration, max_iter=trainer.max_iter)
        if self.enabled:
            from yolact.engine.train.log_header import run_header

            for line in run_header(device=trainer.device, start_iteration=trainer.state.iteration,
                                   max_iter=trainer.max_iter, dataset=self.labels_dataset) + self.header_notes:
                self._write_log_line(line)
        if self.enabled and self.plots and self.labels_dataset is not None:
            from yolact.engine.train.run_plots import write_labels_plot

            self._plot(write_labels_plot, self.run_dir / "plots", self.labels_dataset)

    def after_step(self, trainer) -> None:
        if self.bar is not None and self.bar.total != trainer.max_iter:  # train.time re-planned the run
            self.bar.total = trainer.max_iter
        scalars = dict(trainer.last_scalars)
        data_time, step_time = scalars.pop("data_time", 0.0), scalars.pop("step_time", 0.0)
        self.log_step(trainer.state.iteration - 1, scalars, data_time, step_time)
        self._log_new_validation(trainer)

    def after_train(self, trainer) -> None:
        self._log_new_validation(trainer)
        self.close()

    def _log_new_validation(self, trainer) -> None:
        result = trainer.state.validation
        if result is not None and result is not self._logged_validation:
            self._logged_validation = result
            self.log_validation(result.iteration, result.metrics, result.images, result)

    def open(self, *, start_iteration: int, max_iter: int) -> None:
        """Open the event writer, train.log and the progress bar (from ``start_iteration``)."""
        if not self.enabled:
            return
        from torch.utils.tensorboard import SummaryWriter

        from yolact.utils.progress import progress_bar

        self.run_dir = Path(self.run_dir)
        self.writer = SummaryWriter(str(self.run_dir))
        self._add_file_log(self.run_dir / "train.log")
        # a resumed run drops the rows of iterations it will replay
        self.metrics_file = MetricsFile(self.run_dir / "metrics.csv", start_iteration=start_iteration)
        self.bar = progress_bar(total=max_iter, initial=start_iteration, disable=not self.progress, desc="train",
                                unit="it")

    def _write_log_line(self, text: str) -> None:
        """A timestamped line in train.log only (not on the console)."""
        self._file_handler.stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
        self._file_handler.flush()

    def _add_file_log(self, path: Path) -> None:
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        self._file_handler = handler
        self.logger.addHandler(handler)

    def log_step(self, iteration: int, scalars: Dict[str, float], data_time: float, step_time: float) -> None:
        """Record one finished iteration: weighted losses, total, lr and timings."""
        if not self.enabled:
            return
        for key, value in scalars.items():
            self.smoothed.setdefault(key, SmoothedValue()).update(value)
        losses = {k: v.average for k, v in self.smoothed.items() if k.startswith("loss")}
        self.bar.update(1)
        self.bar.set_postfix({k.replace("loss_", ""): f"{v:.3f}" for k, v in losses.items()}, refresh=False)
        if (iteration + 1) % self.log_interval:
            return
        row = {"iteration": iteration + 1, **scalars, "data_time": data_time, "step_time": step_time}
        for key, value in row.items():
            if key != "iteration":
                self.writer.add_scalar(f"train/{key}", value, iteration + 1)
        self.metrics_file.append(row)
        text = " ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "iteration")
        self._write_log_line(f"iter {iteration + 1}: {text}")

    def log_validation(self, iteration: int, metrics: Dict[str, float], images=(), result=None) -> None:
        """Validation AP scalars (``val/segm/AP`` ...), (3,H,W) uint8 pictures, a metrics.csv row and
        the plots of ``result`` (a ValidationResult). COCOeval's -1 ("no ground truth of this
        size") and NaN are not sent to TensorBoard."""
        if not self.enabled:
            return
        for key, value in metrics.items():
            if value != -1.0 and not math.isnan(value):
                self.writer.add_scalar(f"val/{key}", value, iteration)
        for index, image in enumerate(images):
            self.writer.add_image(f"val/predictions/{index}", image, iteration, dataformats="CHW")
        self.writer.flush()
        self.metrics_file.add_validation(iteration, metrics)
        if self.plots and result is not None:
            from yolact.engine.train.run_plots import write_results_plot, write_validation_plots

            self._plot(write_validation_plots, self.run_dir / "plots", result)
            self._plot(write_results_plot, self.run_dir / "plots", self.metrics_file)
        summary = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k.endswith("/AP"))
        self.logger.info(f"validation at iteration {iteration}: {summary}")

    def _plot(self, write, *args) -> None:
        """A plot that fails is a warning, never the end of a training run."""
        try:
            write(*args)
        except Exception as error:  # noqa: BLE001 (matplotlib can fail in many ways)
            self.logger.warning(f"plot {getattr(write, '__name__', write)} failed: {error}")

    def close(self) -> None:
        if not self.enabled or self.writer is None:
            return
        self.bar.close()
        self.writer.close()
        self.metrics_file.rewrite()
        self.metrics_file.close()
        if self.plots:
            from yolact.engine.train.run_plots import write_results_plot

            self._plot(write_results_plot, self.run_dir / "plots", self.metrics_file)
        self.logger.removeHandler(self._file_handler)
        self._file_handler.close()
        self.writer = None
