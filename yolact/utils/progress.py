"""Progress bars that keep the console clean: a live bar on a terminal, a line every 30 s in a log file.

Log records go through ``tqdm.write`` (see :mod:`yolact.entry`), so a log line never glues to
a bar. When stderr is not a terminal (a redirected log, a job scheduler) the bar would rewrite
itself at every update with carriage returns; there it prints a whole line at most once every
``NON_TTY_INTERVAL`` seconds (and at the end), and nothing to erase before a log line.
"""
import sys

from tqdm import tqdm

__all__ = ["NON_TTY_INTERVAL", "LineWriter", "progress_bar"]

NON_TTY_INTERVAL = 30.0  # seconds between bar lines when stderr is not a terminal


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class LineWriter:
    """A file for tqdm where each bar refresh becomes one line: carriage returns dropped, blank
    writes (tqdm's erasing before ``tqdm.write`` and at close) skipped."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(**kwargs) -> tqdm:
    """``tqdm(**kwargs)`` on stderr with the refresh interval chosen as the module docstring says."""
    terminal = _is_terminal(sys.stderr)
    kwargs.setdefault("mininterval", 0.1 if terminal else NON_TTY_INTERVAL)
    kwargs.setdefault("dynamic_ncols", terminal)
    if not terminal:
        kwargs.setdefault("file", LineWriter(sys.stderr))
        kwargs.setdefault("ncols", 100)
        # tqdm's monitor thread would force a refresh after maxinterval without resetting the
        # clock of the next one, giving two lines seconds apart: leave the pace to mininterval
        kwargs.setdefault("maxinterval", float("inf"))
    return tqdm(**kwargs)
