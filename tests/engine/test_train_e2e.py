"""End-to-end training through the real entry point ``train.main`` on a tiny shapes dataset."""
import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import train
from tests.engine.tiny_run import STEP_SCHEDULE, make_tiny_shapes, tiny_overrides

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory):
    return make_tiny_shapes(tmp_path_factory.mktemp("shapes"))


def read_metrics(run_dir: Path, kind: str = "train"):
    """The training rows (a loss_total) or the validation rows (a val/segm/AP) of metrics.csv."""
    column = "loss_total" if kind == "train" else "val/segm/AP"
    with open(run_dir / "metrics.csv") as handle:
        return [row for row in csv.DictReader(handle) if row.get(column)]


def decodable_png(path: Path) -> bool:
    import cv2

    image = cv2.imread(str(path))
    return image is not None and image.shape[0] > 50 and image.std() > 0


def scalar_tags(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    events.Reload()
    return set(events.Tags()["scalars"]), set(events.Tags()["images"])


def test_training_writes_checkpoints_metrics_events_and_evaluates(shapes_root, tmp_path, capsys):
    overrides = tiny_overrides(shapes_root, tmp_path, **STEP_SCHEDULE)
    rc = train.main(["--config", "shapes", "--name", "tiny"] + overrides)
    assert rc == 0
    run_dir = tmp_path / "tiny"
    weights = sorted(p.name for p in (run_dir / "weights").iterdir())
    assert weights == ["best.pth", "iter_0000002.pth", "last.pth"]
    last = torch.load(run_dir / "weights" / "last.pth", weights_only=True)
    assert last["iteration"] == 4 and last["config"]["model"]["num_classes"] == len(last["class_names"])
    assert set(last) >= {"model", "optimizer", "scaler", "rng", "config", "class_names", "category_ids"}
    rows = read_metrics(run_dir)
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4]
    assert float(rows[0]["lr"]) == pytest.approx(1e-4) and float(rows[2]["lr"]) == pytest.approx(1e-3)
    for row in rows:
        terms = [float(row[k]) for k in ("loss_cls", "loss_box", "loss_mask", "loss_semseg")]
        assert float(row["loss_total"]) == pytest.approx(sum(terms), rel=1e-5)
    scalars, images = scalar_tags(run_dir)
    expected = {f"train/{k}" for k in ("loss_cls", "loss_box", "loss_mask", "loss_semseg", "loss_total", "lr",
                                       "data_time", "step_time")}
    expected |= {f"val/{t}/{m}" for t in ("bbox", "segm") for m in ("AP", "AP50", "AP75", "APs", "APm")}
    assert expected <= scalars
    assert "val/segm/APl" not in scalars  # COCOeval's -1: no large objects in these images
    assert {"val/predictions/0", "val/predictions/1"} <= images
    assert (run_dir / "config.yaml").is_file() and (run_dir / "train.log").is_file()
    captured = capsys.readouterr()
    out, err = captured.out, captured.err.splitlines()
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]" in out
    # log lines start their own line, never glued to the bar (stderr is not a terminal here)
    assert any(line.startswith("validation at iteration 2: bbox/AP=") for line in err)
    assert any(line.startswith("training finished at iteration 4") for line in err) and "\r" not in captured.err
    validations = read_metrics(run_dir, "val")
    assert [int(r["iteration"]) for r in validations] == [2, 4]
    for name in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"):
        assert {f"val/bbox/{name}", f"val/segm/{name}"} <= set(validations[-1]), name
    best = torch.load(run_dir / "weights" / "best.pth", weights_only=True)
    best_row = max(validations, key=lambda row: float(row["val/segm/AP"]))  # the first of equals
    assert (best["iteration"], best["metrics"]["segm/AP"]) == (int(best_row["iteration"]),
                                                              pytest.approx(float(best_row["val/segm/AP"])))
    assert {"val/segm/AP/triangle", "val/bbox/AP/triangle"} <= set(validations[-1])  # per class
    plots = run_dir / "plots"
    for name in ("results.png", "PR_curve_mask.png", "PR_curve_box.png", "F1_curve_mask.png", "F1_curve_box.png",
                 "confusion_matrix.png", "labels.jpg", "val_0.jpg", "val_1.jpg"):
        assert decodable_png(plots / name), name
    import cv2

    picture = cv2.imread(str(plots / "val_0.jpg"))
    assert picture.shape[:2] == (64, 64 * 2 + 4)  # ground truth | gap | predictions
    assert not any(p.name.startswith(".") for p in plots.iterdir())  # no temporary left


def test_resume_continues_exactly(shapes_root, tmp_path):
    common = tiny_overrides(shapes_root, tmp_path,
                            **{"train.val_interval": 0, "train.max_iter": 4, **STEP_SCHEDULE})
    assert train.main(["--config", "shapes", "--name", "straight", "--no-eval"] + common) == 0
    first = tiny_overrides(shapes_root, tmp_path,
                           **{"train.val_interval": 0, "train.max_iter": 2, **STEP_SCHEDULE})
    assert train.main(["--config", "shapes", "--name", "split", "--no-eval"] + first) == 0
    assert train.main(["--config", "shapes", "--resume", str(tmp_path / "split"), "--no-eval",
                       "train.max_iter=4"]) == 0
    straight, split = read_metrics(tmp_path / "straight"), read_metrics(tmp_path / "split")
    assert [r["iteration"] for r in split] == ["1", "2", "3", "4"]
    for a, b in zip(straight, split):
        for key in ("loss_cls", "loss_box", "loss_mask", "loss_semseg", "lr"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-5, abs=1e-7), (a["iteration"], key)


def test_resume_after_a_kill_drops_the_rows_of_replayed_iterations(shapes_root, tmp_path):
    """Issue 15 item 7: killed after iteration 4 with the last checkpoint at 2, the resumed run
    replays 3 and 4; metrics.csv must not hold them twice."""
    import shutil

    args = tiny_overrides(shapes_root, tmp_path, **{"train.val_interval": 0, "train.max_iter": 4})
    assert train.main(["--config", "shapes", "--name", "killed", "--no-eval"] + args) == 0
    weights = tmp_path / "killed" / "weights"
    (weights / "last.pth").unlink()
    shutil.copy(weights / "iter_0000002.pth", weights / "last.pth")  # what a kill after iteration 4 leaves
    assert [r["iteration"] for r in read_metrics(tmp_path / "killed")] == ["1", "2", "3", "4"]
    assert train.main(["--config", "shapes", "--resume", str(tmp_path / "killed"), "--no-eval"]) == 0
    assert [r["iteration"] for r in read_metrics(tmp_path / "killed")] == ["1", "2", "3", "4"]


def test_nonfinite_losses_skip_then_stop_with_last_good_state(shapes_root, tmp_path, monkeypatch, capsys):
    import yolact.engine.train.launch as launch

    real_build = launch.build_criterion

    def poisoned_build(config):
        criterion = real_build(config)
        calls = {"n": 0}
        original_forward = criterion.forward

        def forward(outputs, targets, *args, **kwargs):
            losses = original_forward(outputs, targets, *args, **kwargs)
            calls["n"] += 1
            if calls["n"] > 2:  # iterations 0 and 1 are fine, then NaN forever
                losses["loss_mask"] = losses["loss_mask"] * math.nan
            return losses
        criterion.forward = forward
        return criterion

    monkeypatch.setattr(launch, "build_criterion", poisoned_build)
    args = tiny_overrides(shapes_root, tmp_path, **{"train.val_interval": 0, "train.max_nonfinite": 3})
    assert train.main(["--config", "shapes", "--name", "nan", "--no-eval"] + args) == 2
    err = capsys.readouterr().err
    final = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(final) == 1 and "3 non-finite losses in a row" in final[0] and "loss_mask=nan" in final[0]
    assert "non-finite loss at iteration 2" in err and "image ids [" in err
    assert torch.load(tmp_path / "nan" / "weights" / "last.pth", weights_only=True)["iteration"] == 2


def test_sigterm_saves_and_resume_continues(shapes_root, tmp_path):
    args = tiny_overrides(shapes_root, tmp_path, **{"train.val_interval": 0, "train.max_iter": 100000,
                                                    "train.save_interval": 100000})
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen([sys.executable, str(REPO / "train.py"), "--config", "shapes", "--name", "term",
                                "--no-eval"] + args, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "term" / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline and (not metrics.exists() or len(metrics.read_text().splitlines()) < 3):
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "SIGTERM received" in err and "Traceback" not in err
    saved = torch.load(tmp_path / "term" / "weights" / "last.pth", weights_only=True)
    assert saved["iteration"] >= 2
    resumed = train.main(["--config", "shapes", "--resume", str(tmp_path / "term"), "--no-eval",
                          f"train.max_iter={saved['iteration'] + 1}"])
    assert resumed == 0
    rows = read_metrics(tmp_path / "term")
    assert int(rows[-1]["iteration"]) == saved["iteration"] + 1


def test_missing_dataset_exits_2_with_one_line(tmp_path, capsys):
    args = tiny_overrides(tmp_path / "nowhere", tmp_path)
    assert train.main(["--config", "shapes"] + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "instances_train.json" in err[0]
