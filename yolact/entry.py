"""Shared plumbing of the command-line entry points: logging and the exit-code-2 rule."""
import logging
import sys
from typing import Callable, List, Optional

from yolact.errors import YolactError

__all__ = ["run_entry_point", "setup_console_logging"]


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (not at creation)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass

    def emit(self, record: logging.LogRecord) -> None:
        """Through ``tqdm.write``: an active progress bar is cleared and redrawn below the line."""
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # a logging call must never raise
            self.handleError(record)


def setup_console_logging(level: int = logging.INFO) -> logging.Logger:
    """Send the ``yolact`` logger to stderr once (idempotent)."""
    logger = logging.getLogger("yolact")
    if not any(isinstance(h, _CurrentStderrHandler) for h in logger.handlers):
        handler = _CurrentStderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def run_entry_point(body: Callable[[List[str]], int], argv: Optional[List[str]]) -> int:
    """Run ``body(argv)``; a :class:`YolactError` becomes one line on stderr and exit code 2."""
    try:
        return body(sys.argv[1:] if argv is None else list(argv))
    except YolactError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
