"""Training monitoring as a hook: smoothed losses, a tqdm bar, TensorBoard scalars/images, metrics.csv."""
import csv
import logging
from collections import deque
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from yolact.engine.train.hooks import HookBase

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
    ``before_train`` and closes them in ``after_train``.

    Args:
        run_dir: the run folder (events, metrics.csv and train.log go there); None disables.
        log_interval: iterations between scalar writes, csv rows and log lines.
        enabled: False on non-zero ranks.
    """

    def __init__(self, run_dir: Optional[Path], *, log_interval: int, enabled: bool = True, progress: bool = True):
        self.enabled = enabled and run_dir is not None
        self.run_dir, self.progress = run_dir, progress
        self.log_interval = max(1, log_interval)
        self.smoothed: Dict[str, SmoothedValue] = {}
        self.logger = logging.getLogger("yolact")
        self.writer = self.bar = self.csv_file = self.csv_writer = None
        self._logged_validation = None

    def before_train(self, trainer) -> None:
        self.open(start_iteration=trainer.state.iteration, max_iter=trainer.max_iter)

    def after_step(self, trainer) -> None:
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
            self.log_validation(result.iteration, result.metrics, result.images)

    def open(self, *, start_iteration: int, max_iter: int) -> None:
        """Open the event writer, train.log and the progress bar (from ``start_iteration``)."""
        if not self.enabled:
            return
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        self.run_dir = Path(self.run_dir)
        self.writer = SummaryWriter(str(self.run_dir))
        self._add_file_log(self.run_dir / "train.log")
        self.bar = tqdm(total=max_iter, initial=start_iteration, dynamic_ncols=True, disable=not self.progress,
                        desc="train", unit="it")

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
        self._write_csv(row)
        text = " ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "iteration")
        self._file_handler.stream.write(f"iter {iteration + 1}: {text}\n")
        self._file_handler.flush()

    def _write_csv(self, row: Dict[str, float]) -> None:
        path = self.run_dir / "metrics.csv"
        if self.csv_writer is None:
            header = _csv_header(path)  # a resumed run keeps the columns of its file
            self.csv_file = open(path, "a", newline="")
            self.csv_writer = csv.DictWriter(self.csv_file, fieldnames=header or list(row), extrasaction="ignore")
            if not header:
                self.csv_writer.writeheader()
        self.csv_writer.writerow(row)
        self.csv_file.flush()

    def log_validation(self, iteration: int, metrics: Dict[str, float], images=()) -> None:
        """Validation AP scalars (``val/segm/AP`` ...) and (3,H,W) uint8 prediction images."""
        if not self.enabled:
            return
        for key, value in metrics.items():
            self.writer.add_scalar(f"val/{key}", value, iteration)
        for index, image in enumerate(images):
            self.writer.add_image(f"val/predictions/{index}", image, iteration, dataformats="CHW")
        self.writer.flush()
        summary = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k.endswith("/AP"))
        self.logger.info(f"validation at iteration {iteration}: {summary}")

    def close(self) -> None:
        if not self.enabled or self.writer is None:
            return
        self.bar.close()
        self.writer.close()
        if self.csv_file is not None:
            self.csv_file.close()
        self.logger.removeHandler(self._file_handler)
        self._file_handler.close()
        self.writer = None


def _csv_header(path: Path) -> List[str]:
    """The column names of an existing csv file (empty when there is none)."""
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return next(csv.reader(handle), [])
