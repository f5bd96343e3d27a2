"""Atomic file writes: a reader sees the old file or the new one, never a torn one."""
import os
from pathlib import Path
from typing import BinaryIO, Callable, TextIO, Union

__all__ = ["atomic_write"]


def atomic_write(path, write: Callable[[Union[BinaryIO, TextIO]], None], *, binary: bool = True) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, fsync it, rename it over ``path``.

    ``os.replace`` is atomic on POSIX and Windows, so a crash or a full disk at any moment
    leaves the previous ``path`` untouched; the temporary is removed on failure.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp_path, "wb" if binary else "w") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    return path
