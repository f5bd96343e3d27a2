"""The CPU's feature flags, read once: the speed defaults of training and inference depend on them."""
import functools
from pathlib import Path
from typing import FrozenSet, Optional

__all__ = ["cpu_flags"]


@functools.lru_cache(maxsize=None)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> Optional[FrozenSet[str]]:
    """The first processor's x86 ``flags`` from ``cpuinfo``; None where there are none to read."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return None
