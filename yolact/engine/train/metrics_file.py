"""``metrics.csv``: one row per logged iteration and one per validation, kept consistent across resumes.

Training rows (``iteration``, ``loss_*``, ``unweighted/loss_*``, ``lr``, ``data_time``,
``step_time``) are appended as they come, so a killed run keeps them up to the kill. A
validation row (``iteration`` and ``val/bbox/AP`` ... ``val/segm/ARl``, per-class
``val/segm/AP/<class>``) adds columns, so at each validation and at the end the whole file is
rewritten atomically with the union of the columns (a reader never sees a torn file). Cells
a row does not have are empty; COCOeval's -1 ("no ground truth of this size") is kept as -1.

On resume the rows after the checkpoint's iteration (replayed iterations of a killed run) are
dropped.
"""
import csv
import io
from pathlib import Path
from typing import Dict, List

from yolact.utils.atomic import atomic_write

__all__ = ["MetricsFile", "read_metrics_rows"]


def read_metrics_rows(path: Path) -> List[Dict[str, str]]:
    """The rows of an existing metrics.csv as dicts of strings (empty when there is no file)."""
    if not Path(path).is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


class MetricsFile:
    """The rows of ``path`` in memory, appended to and rewritten as the module docstring says.

    Args:
        path: the csv file (created on the first write).
        start_iteration: the iteration training starts from; rows of an existing file beyond it
            are dropped (and the file rewritten) when it is not 0, the file is started over when
            it is 0.
    """

    def __init__(self, path: Path, *, start_iteration: int = 0):
        self.path = Path(path)
        kept = read_metrics_rows(self.path) if start_iteration > 0 else []
        self.rows: List[Dict[str, object]] = [r for r in kept if _iteration(r) <= start_iteration]
        self.columns: List[str] = []
        for row in self.rows:
            self._extend_columns(row)
        self._handle = None
        if self.rows or self.path.is_file():
            self.rewrite()

    def _extend_columns(self, row: Dict[str, object]) -> bool:
        new = [key for key in row if key not in self.columns]
        self.columns.extend(new)
        return bool(new)

    def append(self, row: Dict[str, object]) -> None:
        """Add a training row; appended to the file (rewritten instead when it brings new columns)."""
        self.rows.append(dict(row))
        if self._extend_columns(row) or self._handle is None:
            self.rewrite()
            self._handle = open(self.path, "a", newline="")
            return
        csv.DictWriter(self._handle, fieldnames=self.columns, restval="").writerow(row)
        self._handle.flush()

    def add_validation(self, iteration: int, metrics: Dict[str, float]) -> None:
        """Add a validation row (``val/<metric>`` columns) and rewrite the file atomically."""
        self.rows.append({"iteration": iteration, **{f"val/{k}": v for k, v in metrics.items()}})
        self._extend_columns(self.rows[-1])
        self.rewrite()

    def rewrite(self) -> None:
        """Write every row with every column to a temporary file, then rename it over ``path``."""
        self.close()
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns or ["iteration"], restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write(self.path, lambda handle: handle.write(buffer.getvalue()), binary=False)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def series(self, column: str) -> List[tuple]:
        """``[(iteration, value)]`` of the rows with a number in ``column``."""
        points = []
        for row in self.rows:
            value = row.get(column, "")
            if value not in ("", None):
                points.append((_iteration(row), float(value)))
        return points


def _iteration(row: Dict[str, object]) -> int:
    return int(float(row.get("iteration", 0) or 0))
