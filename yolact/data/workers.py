"""How many DataLoader worker processes ``data.num_workers: auto`` gives, per device.

On a CPU the network's forward and backward already keep every core busy with torch's
intra-op threads (one per core by default). A worker process is then one more busy thread:
each parallel region of the step waits for the thread the worker pre-empted, and the step
slows by more than the loading it spares. Measured on a 2-core Xeon, ``configs/small.yaml``
on hard set b (batch 8 at 160 px, median of 70 steps): 387 ms per step with one worker, 337
ms with none (the loading, 50 ms, then runs between the steps), and 359 ms with one worker at
nice 19. So "auto" loads in the training process on a CPU. On a GPU the host is idle while
the device computes: workers overlap the loading with it, as many as the host has CPUs for
less one for the training process (at most 4 per process).
"""
import os
from typing import Union

__all__ = ["available_cpus", "resolve_num_workers"]

MAX_AUTO_WORKERS = 4


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def resolve_num_workers(setting: Union[int, str], device_type: str, *, processes_per_host: int = 1) -> int:
    """Worker processes for ``data.num_workers`` (an int, kept as it is, or ``"auto"``).

    Args:
        device_type: the training device's type ("cpu", "cuda", ...).
        processes_per_host: training processes sharing this host's CPUs (their workers too).
    """
    if setting != "auto":
        return int(setting)
    if device_type == "cpu":
        return 0
    return max(0, min(MAX_AUTO_WORKERS, available_cpus() // max(1, processes_per_host) - 1))
