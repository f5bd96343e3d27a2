"""The progress bar off a terminal: whole lines, no carriage returns, nothing for tqdm's erasing."""
import io
import sys

from yolact.utils.progress import NON_TTY_INTERVAL, LineWriter, progress_bar


def test_line_writer_turns_refreshes_into_lines():
    stream = io.StringIO()
    writer = LineWriter(stream)
    for text in ("\rtrain: 1/4", "\r          \r", "\n", "\rtrain: 4/4"):
        writer.write(text)
    assert stream.getvalue() == "train: 1/4\ntrain: 4/4\n"


def test_a_non_terminal_bar_prints_its_first_and_last_state_only(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    bar = progress_bar(total=100, desc="train")
    assert bar.mininterval == NON_TTY_INTERVAL
    for _ in range(100):
        bar.update(1)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and len(lines) == 2
    assert lines[0].startswith("train:   0%") and lines[1].startswith("train: 100%")
