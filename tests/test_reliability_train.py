"""Reliability of train.py (issue 15): unwritable outputs, a full disk, a dataset smaller than one
batch, a checkpoint of another model and failed runs, each through the real entry point."""
import errno
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import train
from tests.engine.tiny_run import make_tiny_shapes, tiny_overrides

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_tiny_shapes(tmp_path_factory.mktemp("reliability") / "shapes")


def train_args(data_root: Path, output_dir: Path, *extra, **overrides):
    values = {"train.val_interval": 0, "train.max_iter": 1, **overrides}
    return ["--config", "shapes", "--no-eval", *extra] + tiny_overrides(data_root, output_dir, **values)


def error_lines(err: str):
    """The ``error:`` lines of stderr, after checking it holds no traceback and no library noise."""
    assert "Traceback" not in err and "Warning" not in err and "WARN" not in err
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_output_dir_under_a_file_fails_before_any_work(data_root, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert train.main(train_args(data_root, blocker / "runs")) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"error: {blocker / 'runs'}: cannot create the folder, {blocker} is a file"]
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


def test_read_only_output_dir_fails_before_any_work(data_root, tmp_path, capsys, monkeypatch):
    import tempfile

    def read_only(*args, **kwargs):  # tests run as root, where chmod cannot make a folder read-only
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    (tmp_path / "runs").mkdir()
    assert train.main(train_args(data_root, tmp_path / "runs")) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"error: {tmp_path / 'runs'}: the folder is not writable (Read-only file system)"]
    assert os.listdir(tmp_path / "runs") == []


def _limit_file_size(limit: int):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def test_full_disk_stops_with_one_line_naming_the_last_good_checkpoint(data_root, tmp_path):
    assert train.main(train_args(data_root, tmp_path / "runs", "--name", "full", **{"train.max_iter": 2})) == 0
    weights = tmp_path / "runs" / "full" / "weights"
    size = (weights / "last.pth").stat().st_size
    before = sorted(os.listdir(weights))
    command = [sys.executable, str(REPO_ROOT / "train.py"), "--resume", str(tmp_path / "runs" / "full"),
               "--no-eval", "train.max_iter=4"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                          preexec_fn=_limit_file_size(size // 2))
    assert done.returncode == 2, done.stderr
    assert error_lines(done.stderr) == [
        f"error: no space left on {weights} (File too large); training stopped, the last good checkpoint is "
        f"{weights / 'last.pth'} (iteration 2)"]
    assert done.stderr.rstrip("\n").splitlines()[-1].startswith("error:")
    assert sorted(os.listdir(weights)) == before  # no temporary file left
    assert torch.load(weights / "last.pth", weights_only=True)["iteration"] == 2


def test_full_disk_at_the_first_save_leaves_no_run_folder(data_root, tmp_path, monkeypatch, capsys):
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(torch, "save", full_disk)
    assert train.main(train_args(data_root, tmp_path / "runs", "--name", "first")) == 2
    weights = tmp_path / "runs" / "first" / "weights"
    assert error_lines(capsys.readouterr().err) == [
        f"error: no space left on {weights} (No space left on device); training stopped, "
        f"no checkpoint was saved"]
    assert os.listdir(tmp_path / "runs") == []


def test_full_disk_while_writing_metrics_names_the_run_folder(data_root, tmp_path, monkeypatch, capsys):
    import csv

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(csv.DictWriter, "writerow", full_disk)
    assert train.main(train_args(data_root, tmp_path / "runs", "--name", "metrics")) == 2
    assert error_lines(capsys.readouterr().err) == [
        f"error: no space left on {tmp_path / 'runs' / 'metrics'} (No space left on device); training stopped, "
        f"no checkpoint was saved"]
    assert os.listdir(tmp_path / "runs") == []


def test_dataset_smaller_than_one_batch_trains_with_repeated_images(data_root, tmp_path, capsys):
    args = train_args(data_root, tmp_path / "runs", "--name", "small", **{"train.batch_size": 10})
    assert train.main(args) == 0
    err = capsys.readouterr().err
    assert (f"{data_root / 'annotations' / 'instances_train.json'}: 8 images, fewer than one batch of 10; "
            f"each batch repeats images (differently augmented)") in err.splitlines()
    assert torch.load(tmp_path / "runs" / "small" / "weights" / "last.pth", weights_only=True)["iteration"] == 1


def test_init_weights_of_another_model_names_the_file_and_leaves_nothing(data_root, tmp_path, capsys):
    other = {"conv.weight": torch.zeros(3, 3, 3, 3)}
    torch.save(other, tmp_path / "other_model.pth")
    args = train_args(data_root, tmp_path / "runs", **{"model.init_weights": tmp_path / "other_model.pth"})
    assert train.main(args) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith(f"error: {tmp_path / 'other_model.pth'}: checkpoint does not fit the model: ")
    assert not (tmp_path / "runs").exists()


def test_missing_init_weights_leaves_no_run_folder(data_root, tmp_path, capsys):
    args = train_args(data_root, tmp_path / "runs", **{"model.init_weights": tmp_path / "none.pth"})
    assert train.main(args) == 2
    assert error_lines(capsys.readouterr().err) == [f"error: {tmp_path / 'none.pth'}: checkpoint not found"]
    assert not (tmp_path / "runs").exists()
