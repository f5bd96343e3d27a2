"""Median timing of a callable after warm-up, with device synchronisation."""
import statistics
import time
from typing import Callable, List, Optional

import torch

__all__ = ["time_median_ms", "format_table"]


def time_median_ms(fn: Callable[[], object], *, repeats: int, warmup: int = 2,
                   device: Optional[torch.device] = None) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` runs after ``warmup`` runs."""
    def synchronize():
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    times: List[float] = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        fn()
        synchronize()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def format_table(rows: List[dict], columns: List[str]) -> str:
    """A plain-text table of ``rows`` (dicts) with the given column order; floats get 3 decimals."""
    def cell(value):
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    widths = [max(len(col), *(len(cell(row.get(col, ""))) for row in rows)) for col in columns]
    lines = ["  ".join(col.ljust(w) for col, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(cell(row.get(col, "")).ljust(w) for col, w in zip(columns, widths)) for row in rows]
    return "\n".join(lines)
