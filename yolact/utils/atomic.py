"""Atomic file writes: a reader sees the old file or the new one, never a torn one."""
import os
from pathlib import Path
from typing import BinaryIO, Callable, Optional, TextIO, Union

from yolact.utils.output_folders import write_error

__all__ = ["atomic_write"]


class _RecordingFile:
    """A file handle that remembers the first OSError of a ``write``: ``torch.save`` turns it into
    a RuntimeError ("unexpected pos ...") that no longer tells a full disk."""

    def __init__(self, handle):
        self.handle, self.error = handle, None

    def write(self, data):
        try:
            return self.handle.write(data)
        except OSError as error:
            self.error = self.error or error
            raise

    def __getattr__(self, name):
        return getattr(self.handle, name)


def atomic_write(path, write: Callable[[Union[BinaryIO, TextIO]], None], *, binary: bool = True) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, fsync it, rename it over ``path``.

    ``os.replace`` is atomic on POSIX and Windows, so a crash or a full disk at any moment
    leaves the previous ``path`` untouched; the temporary is removed on failure. A failed write
    raises :class:`~yolact.utils.output_folders.OutputWriteError` (an OSError and a one-line
    YolactError: "no space left on <folder> (...)" or "<folder>: the folder is not writable (...)").
    """
    path = Path(path)
    tmp_path = path.with_name(f".{path.name}.tmp{os.getpid()}")
    recording: Optional[_RecordingFile] = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp_path, "wb" if binary else "w") as handle:
            recording = _RecordingFile(handle)
            write(recording)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except OSError as error:
        raise write_error(path.parent, error) from None
    except Exception:
        if recording is not None and recording.error is not None:
            raise write_error(path.parent, recording.error) from None
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    return path
