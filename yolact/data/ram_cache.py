"""Decoded images and masks kept in memory after their first use (``data.cache``).

Decoding costs the same every epoch: on hard set b (images of about 300x300 px), JPEG decoding
and RLE/polygon mask decoding took 18 ms of the 45 ms that loading one batch of 8 (with its
mosaic partners) took on a 2-core Xeon. A small dataset fits in memory decoded; this cache
holds each image's pixels and masks after the first decode and hands out copies, so that
augmentations may work in place. Each DataLoader worker holds its own cache.
"""
import logging
import os
from pathlib import Path
from typing import Callable, Dict, Hashable, Optional, Sequence, TypeVar

import numpy as np

__all__ = ["DecodedCache", "available_memory_bytes", "decoded_size_bytes"]

logger = logging.getLogger("yolact")

Value = TypeVar("Value")

# the share of the available memory a cache may take
MAX_MEMORY_FRACTION = 0.5


def available_memory_bytes() -> Optional[int]:
    """MemAvailable of /proc/meminfo (Linux), else free physical pages; None when unknown."""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def decoded_size_bytes(sizes: Sequence[tuple]) -> int:
    """Bytes of every image decoded: ``sizes`` holds (height, width, objects) per image
    (3 bytes per pixel for the BGR image, 1 per pixel and object for the uint8 masks)."""
    return sum(height * width * (3 + objects) for height, width, objects in sizes)


def _copy(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    return value


class DecodedCache:
    """``get(key, load)``: ``load()``'s result, decoded once and copied out on every call.

    A ``None`` result (an image that cannot be decoded) is not kept, so that it is reported
    as often as it is met.
    """

    def __init__(self):
        self._values: Dict[Hashable, object] = {}

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: Hashable, load: Callable[[], Value]) -> Value:
        if key not in self._values:
            value = load()
            if value is None:
                return None
            self._values[key] = value
        return _copy(self._values[key])

    @classmethod
    def if_it_fits(cls, name: str, decoded_bytes: int, available_bytes: Optional[int],
                   copies: int = 1) -> Optional["DecodedCache"]:
        """A cache, or None (with a warning naming ``name``) when ``copies`` caches of
        ``decoded_bytes`` (one per loading process) exceed ``MAX_MEMORY_FRACTION`` of
        ``available_bytes`` (unknown: cache)."""
        total = decoded_bytes * max(1, copies)
        held = f" in each of {copies} loader processes" if copies > 1 else ""
        if available_bytes is not None and total > MAX_MEMORY_FRACTION * available_bytes:
            logger.warning(f"{name}: data.cache is on, but its images and masks take {decoded_bytes / 2 ** 30:.1f} "
                           f"GiB decoded{held}, more than {MAX_MEMORY_FRACTION:.0%} of the "
                           f"{available_bytes / 2 ** 30:.1f} GiB available: not cached")
            return None
        logger.info(f"{name}: caching the decoded images and masks ({decoded_bytes / 2 ** 20:.0f} MiB at most{held})")
        return cls()
