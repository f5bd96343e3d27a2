"""The one exception type that entry points turn into a one-line message and exit code 2."""

__all__ = ["YolactError"]


class YolactError(Exception):
    """A user-facing error (bad config, bad data, bad checkpoint).

    The message is one line that names the file, the image id or the config key at fault;
    ``train.py`` and ``eval.py`` print it without a traceback and exit with code 2.
    """
