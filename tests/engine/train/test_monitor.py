"""The monitor hook's metrics.csv: weighted and unweighted columns, validation rows, and resumes."""
import csv

from yolact.engine.train.monitor import TrainMonitor

SCALARS = {"loss_a": 2.0, "loss_total": 2.0, "unweighted/loss_a": 1.0, "lr": 0.1}


def rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_new_file_has_every_column(tmp_path):
    monitor = TrainMonitor(tmp_path, log_interval=1, progress=False)
    monitor.open(start_iteration=0, max_iter=2)
    monitor.log_step(0, SCALARS, data_time=0.5, step_time=1.5)
    monitor.close()
    assert rows(tmp_path / "metrics.csv") == [
        ["iteration", "loss_a", "loss_total", "unweighted/loss_a", "lr", "data_time", "step_time"],
        ["1", "2.0", "2.0", "1.0", "0.1", "0.5", "1.5"]]


def test_resumed_file_keeps_its_rows_and_gains_new_columns(tmp_path):
    (tmp_path / "metrics.csv").write_text("iteration,loss_a,loss_total,lr,data_time,step_time\n1,3,3,0.1,0,1\n")
    monitor = TrainMonitor(tmp_path, log_interval=1, progress=False, plots=False)
    monitor.open(start_iteration=1, max_iter=2)
    monitor.log_step(1, SCALARS, data_time=0.5, step_time=1.5)
    monitor.close()
    assert rows(tmp_path / "metrics.csv") == [
        ["iteration", "loss_a", "loss_total", "lr", "data_time", "step_time", "unweighted/loss_a"],
        ["1", "3", "3", "0.1", "0", "1", ""],
        ["2", "2.0", "2.0", "0.1", "0.5", "1.5", "1.0"]]


def test_resume_drops_rows_beyond_the_checkpoint(tmp_path):
    """A run killed at iteration 5 after a checkpoint at 3 replays 4 and 5: their rows go (issue 15 item 7)."""
    lines = ["iteration,loss_a,lr,val/segm/AP"] + [f"{i},{i},0.1," for i in range(1, 6)] + ["3,,,0.25", "5,,,0.5"]
    (tmp_path / "metrics.csv").write_text("\n".join(lines) + "\n")
    monitor = TrainMonitor(tmp_path, log_interval=1, progress=False, plots=False)
    monitor.open(start_iteration=3, max_iter=5)
    assert rows(tmp_path / "metrics.csv") == [
        ["iteration", "loss_a", "lr", "val/segm/AP"], ["1", "1", "0.1", ""], ["2", "2", "0.1", ""],
        ["3", "3", "0.1", ""], ["3", "", "", "0.25"]]
    monitor.log_step(3, {"loss_a": 7.0, "lr": 0.1}, data_time=0.0, step_time=0.0)
    monitor.close()
    assert rows(tmp_path / "metrics.csv")[-1] == ["4", "7.0", "0.1", "", "0.0", "0.0"]


def test_validation_row_every_metric_and_tensorboard_skips_minus_one(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monitor = TrainMonitor(tmp_path, log_interval=1, progress=False, plots=False)
    monitor.open(start_iteration=0, max_iter=2)
    monitor.log_step(0, {"loss_a": 1.0}, data_time=0.0, step_time=0.0)
    monitor.log_validation(1, {"segm/AP": 0.5, "segm/APl": -1.0, "segm/AP/circle": 0.25})
    monitor.log_step(1, {"loss_a": 2.0}, data_time=0.0, step_time=0.0)
    monitor.close()
    assert rows(tmp_path / "metrics.csv") == [
        ["iteration", "loss_a", "data_time", "step_time", "val/segm/AP", "val/segm/APl", "val/segm/AP/circle"],
        ["1", "1.0", "0.0", "0.0", "", "", ""], ["1", "", "", "", "0.5", "-1.0", "0.25"],
        ["2", "2.0", "0.0", "0.0", "", "", ""]]
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert {"val/segm/AP", "val/segm/AP/circle"} <= set(events.Tags()["scalars"])
    assert "val/segm/APl" not in events.Tags()["scalars"]


def test_train_log_starts_with_a_header_and_lines_have_timestamps(tmp_path):
    import re

    import torch

    from tests.engine.train.test_trainer import make_trainer

    monitor = TrainMonitor(tmp_path, log_interval=1, progress=False, plots=False)
    make_trainer(hooks=[monitor], max_iter=2).train()
    lines = (tmp_path / "train.log").read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    assert [re.sub(stamp, "T", line).split(":")[0] for line in lines[:4]] == [
        "T command", "T versions", "T device", "T iterations"]
    assert f"torch {torch.__version__}" in lines[1] and "device: cpu (" in lines[2]
    assert all(re.match(stamp + " ", line) for line in lines) and lines[-1].split(" ", 2)[2].startswith("iter 2:")


def test_the_bar_follows_a_replanned_length(tmp_path):
    """train.time re-plans ``trainer.max_iter`` during the run: the bar's total follows it."""
    from tests.engine.train.test_trainer import make_trainer
    from yolact.engine.train.hooks import HookBase

    class Replan(HookBase):  # what the time budget does after its warm-up
        def after_step(self, trainer):
            if trainer.state.iteration == 1:
                trainer.max_iter = 3

    monitor = TrainMonitor(tmp_path, log_interval=1, progress=True, plots=False)
    totals = []

    class Watch(HookBase):
        def after_step(self, trainer):
            totals.append(monitor.bar.total)

    trainer = make_trainer(hooks=[Replan(), monitor, Watch()], max_iter=5)
    trainer.train()
    assert totals == [3, 3, 3] and trainer.state.iteration == 3
