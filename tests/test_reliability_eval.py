"""Reliability of eval.py (issues 14 and 15): results never overwritten, unwritable outputs found
before the work, the summary printed before files are written, and no library noise before
the one-line errors."""
import errno
import hashlib
import os
import pickle

import cv2
import numpy as np
import pytest

import eval as eval_cli
from tests.test_eval_cli import trained  # noqa: F401  (the tiny trained run, a module fixture)

pytestmark = pytest.mark.slow


def tree_digest(folder):
    """{relative path: sha1} of every file under ``folder``."""
    return {str(path.relative_to(folder)): hashlib.sha1(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def run_folder(trained):
    return trained["weights"].parent.parent


def run_eval(trained, *args):
    return eval_cli.main(["--weights", str(trained["weights"]), "--device", "cpu", *args])


def test_two_evaluations_of_a_run_keep_both_results(trained, capsys):
    run = run_folder(trained)
    training_files = tree_digest(run)
    assert run_eval(trained, "--max-images", "4") == 0
    first = capsys.readouterr()
    first_files = tree_digest(run / "eval")
    assert run_eval(trained, "--max-images", "2") == 0
    second = capsys.readouterr()
    assert f"results in {run / 'eval'}" in first.err.splitlines()
    assert f"results in {run / 'eval-2'}" in second.err.splitlines()
    assert sorted(first_files) == ["eval_summary.txt", "results.json"]
    assert tree_digest(run / "eval") == first_files  # the first evaluation is intact
    assert sorted(tree_digest(run / "eval-2")) == ["eval_summary.txt", "results.json"]
    after = tree_digest(run)
    assert {name: digest for name, digest in after.items() if not name.startswith("eval")} == training_files


def test_predictions_get_their_own_numbered_folders(trained, capsys):
    image = sorted((trained["data"] / "val").iterdir())[0]
    for folder in ("predict", "predict-2"):
        assert run_eval(trained, "--image", str(image)) == 0
        drawn = run_folder(trained) / folder / f"{image.stem}_pred.png"
        assert cv2.imread(str(drawn)) is not None
        assert f"results in {run_folder(trained) / folder}" in capsys.readouterr().err.splitlines()


def test_output_under_a_file_fails_before_the_work(trained, tmp_path, capfd):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    image = sorted((trained["data"] / "val").iterdir())[0]
    under_file = f"cannot create the folder, {blocker} is a file"
    cases = [(["--output", str(blocker / "out")], f"{blocker / 'out'}: {under_file}"),
             (["--images", f"{trained['data'] / 'val'}:{blocker / 'drawn'}"],
              f"{blocker / 'drawn'}: {under_file}"),
             (["--image", f"{image}:{blocker / 'one.png'}"], f"{blocker}: is a file, not a folder"),
             (["--images", str(trained["data"] / "val"), "--save-json", str(blocker / "dets.json")],
              f"{blocker}: is a file, not a folder")]
    for args, message in cases:
        assert run_eval(trained, *args) == 2
        captured = capfd.readouterr()
        assert captured.err.splitlines() == [f"error: {message}"]
        assert captured.out == ""
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


def test_read_only_output_fails_before_the_evaluation(trained, tmp_path, capfd, monkeypatch):
    import tempfile

    def read_only(*args, **kwargs):  # tests run as root, where chmod cannot make a folder read-only
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    assert run_eval(trained, "--output", str(tmp_path / "out")) == 2
    captured = capfd.readouterr()
    assert captured.err.splitlines() == [
        f"error: {tmp_path / 'out'}: the folder is not writable (Read-only file system)"]
    assert captured.out == "" and os.listdir(tmp_path) == []


def test_full_disk_during_eval_prints_the_summary_then_one_line(trained, tmp_path, capsys, monkeypatch):
    import json

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(json, "dump", full_disk)
    run = run_folder(trained)
    before = sorted(os.listdir(run))
    folder = run / next(name for name in ["eval"] + [f"eval-{n}" for n in range(2, 99)] if name not in before)
    assert run_eval(trained, "--max-images", "2") == 2
    captured = capsys.readouterr()
    assert "Average Precision" in captured.out  # the summary came before the failed writes
    assert "Traceback" not in captured.err
    assert [line for line in captured.err.splitlines() if line.startswith("error:")] == \
        [f"error: no space left on {folder} (No space left on device)"]
    assert sorted(os.listdir(run)) == before  # the empty results folder was removed


def test_malicious_pickle_is_refused_in_one_line_without_warnings(tmp_path, capfd):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch PWNED",))
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"model": Exploit()}, protocol=4))
    assert eval_cli.main(["--weights", str(path), "--device", "cpu", "--output", str(tmp_path / "out")]) == 2
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {path}: refused to load, not a plain-tensor checkpoint (")
    assert lines[0].endswith(")") and "Weights only load failed" not in lines[0]
    assert not (tmp_path / "PWNED").exists()


def test_missing_or_truncated_pictures_give_no_opencv_noise(trained, tmp_path, capfd):
    assert run_eval(trained, "--image", str(tmp_path / "absent.jpg")) == 2
    assert capfd.readouterr().err.splitlines() == [
        f"error: {tmp_path / 'absent.jpg'}: image not found"]
    folder = tmp_path / "in"
    folder.mkdir()
    image = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(folder / "good.jpg"), image)
    data = (folder / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    assert run_eval(trained, "--images", f"{folder}:{tmp_path / 'out'}") == 0
    err = capfd.readouterr().err
    assert "Premature end of JPEG file" not in err and "WARN" not in err
    assert f"{folder / 'truncated.jpg'}: cannot read this image, skipped" in err
