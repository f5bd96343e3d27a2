"""Median timing of a callable after warm-up, with device synchronisation."""
import statistics
import time
from typing import Callable, Dict, Hashable, List, Optional

import torch

__all__ = ["time_median_ms", "time_interleaved_median_ms", "format_table"]


def _timed_ms(fn: Callable[[], object], device: Optional[torch.device]) -> float:
    """Wall time of one ``fn()`` in milliseconds, the device synchronised before and after."""
    def synchronize():
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)

    synchronize()
    start = time.perf_counter()
    fn()
    synchronize()
    return (time.perf_counter() - start) * 1000.0


def time_median_ms(fn: Callable[[], object], *, repeats: int, warmup: int = 2,
                   device: Optional[torch.device] = None) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` runs after ``warmup`` runs."""
    return time_interleaved_median_ms({"fn": fn}, repeats=repeats, warmup=warmup, device=device)["fn"]


def time_interleaved_median_ms(fns: Dict[Hashable, Callable[[], object]], *, repeats: int, warmup: int = 2,
                               device: Optional[torch.device] = None) -> Dict[Hashable, float]:
    """Median wall time in milliseconds of each of ``fns``, run in turn (one call of each per
    round) so that a machine slowing down or speeding up affects all of them alike; the ratios
    between them are then steadier than from back-to-back measurements."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: Dict[Hashable, List[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(_timed_ms(fn, device))
    return {name: statistics.median(values) for name, values in times.items()}


def format_table(rows: List[dict], columns: List[str]) -> str:
    """A plain-text table of ``rows`` (dicts) with the given column order; floats get 3 decimals."""
    def cell(value):
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    widths = [max(len(col), *(len(cell(row.get(col, ""))) for row in rows)) for col in columns]
    lines = ["  ".join(col.ljust(w) for col, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(cell(row.get(col, "")).ljust(w) for col, w in zip(columns, widths)) for row in rows]
    return "\n".join(lines)
