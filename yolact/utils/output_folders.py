"""Output folders: checked for writing before any work starts, numbered so finished work is never overwritten.

Every failure here is a :class:`~yolact.errors.YolactError` whose one-line message names the
folder: ``<folder>: cannot create the folder, <file> is a file``, ``<folder>: is a file, not a
folder``, ``<folder>: the folder is not writable (<reason>)`` or ``no space left on <folder>
(<reason>)``.
"""
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from yolact.errors import YolactError

__all__ = ["OutputWriteError", "is_disk_full", "write_error", "check_writable_folder", "next_free_folder",
           "remove_if_empty",
           "remove_folder"]

# errno values that mean "the disk (or the quota, or the file-size limit) is full".
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class OutputWriteError(YolactError, OSError):
    """A failed write, as a one-line YolactError that is also an OSError (``errno`` kept).

    ``disk_full`` tells a full disk, quota or file-size limit from any other failure.
    """

    def __init__(self, message: str, code: Optional[int] = None):
        super().__init__(message)
        self.errno = code
        self.disk_full = code in _DISK_FULL


def is_disk_full(error: OSError) -> bool:
    """Whether ``error`` means a full disk, quota or file-size limit."""
    return error.errno in _DISK_FULL


def write_error(folder: Path, error: OSError) -> OutputWriteError:
    """The one-line error for ``error`` met while writing into ``folder``."""
    reason = error.strerror or str(error)
    if error.errno in _DISK_FULL:
        return OutputWriteError(f"no space left on {folder} ({reason})", error.errno)
    return OutputWriteError(f"{folder}: the folder is not writable ({reason})", error.errno)


def _nearest_existing(folder: Path) -> Path:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing


def check_writable_folder(folder: Path) -> None:
    """Raise OutputWriteError unless ``folder`` exists and is writable or can be created.

    Nothing is created: a probe file is written and removed in ``folder`` or, when it does not
    exist yet, in its nearest existing parent.
    """
    folder = Path(folder)
    existing = _nearest_existing(folder)
    if existing == folder and not existing.is_dir():
        raise OutputWriteError(f"{folder}: is a file, not a folder", errno.ENOTDIR)
    if not existing.is_dir():
        raise OutputWriteError(f"{folder}: cannot create the folder, {existing} is a file", errno.ENOTDIR)
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".write-check-")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise write_error(folder, error) from None


def next_free_folder(parent: Path, name: str) -> Path:
    """Create and return ``parent/name``, or ``name-2``, ``name-3``... when taken (race-free)."""
    check_writable_folder(parent)
    number = 1
    while True:
        candidate = Path(parent) / (name if number == 1 else f"{name}-{number}")
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            number += 1
        except OSError as error:
            raise write_error(candidate, error) from None


def remove_if_empty(folder: Optional[Path]) -> None:
    """Remove ``folder`` when it exists and holds nothing (a result folder nobody wrote to)."""
    if folder is not None and Path(folder).is_dir() and not any(Path(folder).iterdir()):
        Path(folder).rmdir()


def remove_folder(folder: Optional[Path]) -> None:
    """Remove ``folder`` and everything in it (a failed run's own folder), ignoring errors."""
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
