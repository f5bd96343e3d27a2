"""The monitor hook's metrics.csv: weighted and unweighted columns, and a resumed file keeps its columns."""
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


def test_resumed_file_keeps_its_header_and_columns(tmp_path):
    (tmp_path / "metrics.csv").write_text("iteration,loss_a,loss_total,lr,data_time,step_time\n1,3,3,0.1,0,1\n")
    monitor = TrainMonitor(tmp_path, log_interval=1, progress=False)
    monitor.open(start_iteration=1, max_iter=2)
    monitor.log_step(1, SCALARS, data_time=0.5, step_time=1.5)
    monitor.close()
    assert rows(tmp_path / "metrics.csv") == [
        ["iteration", "loss_a", "loss_total", "lr", "data_time", "step_time"],
        ["1", "3", "3", "0.1", "0", "1"],
        ["2", "2.0", "2.0", "0.1", "0.5", "1.5"]]
