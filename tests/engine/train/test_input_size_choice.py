"""train.time_input_sizes: the epochs estimate, the rule, the interleaved timing with a fake clock,
and the choice through train.py (the run's config, its training set's size and a resume)."""
import logging
from types import SimpleNamespace

import pytest
import torch
import yaml

import train
from tests.engine.tiny_run import make_tiny_shapes, tiny_overrides
from yolact.build import with_num_classes
from yolact.config import load_config
from yolact.engine.checkpoint import load_checkpoint
from yolact.engine.train import input_size_choice
from yolact.engine.train.input_size_choice import (choose_input_size, choose_time_input_size, median_object_side,
                                                   planned_epochs, time_probe_steps)
from yolact.errors import YolactError

CPU = torch.device("cpu")


def test_planned_epochs_by_hand():
    # 0.9 of 15 minutes at 0.36 s per step of 8 images, 400 training images: 2250 steps, 45 epochs
    assert planned_epochs(0.36, budget_s=900.0, batch_size=8, num_images=400) == pytest.approx(45.0, rel=1e-12)
    assert planned_epochs(0.36, budget_s=900.0, batch_size=8, num_images=400, train_fraction=1.0) == pytest.approx(50.0)


def test_the_largest_size_that_reaches_the_epochs_else_the_smallest():
    epochs = {256: 45.0, 192: 83.0, 224: 60.0}
    assert choose_input_size(epochs, 40.0) == 256
    assert choose_input_size(epochs, 45.0) == 256  # reaching counts
    assert choose_input_size(epochs, 50.0) == 224
    assert choose_input_size(epochs, 70.0) == 192
    assert choose_input_size(epochs, 100.0) == 192  # none reaches: the smallest
    assert choose_input_size({160: 10.0, 128: 30.0}, 20.0) == 128  # not monotonic: still the largest reaching


def test_the_smallest_affordable_size_where_the_median_object_is_large_enough():
    epochs = {256: 45.0, 192: 83.0, 224: 60.0}
    # 0.15 x 224 = 33.6 >= 32 > 0.15 x 192 = 28.8
    assert choose_input_size(epochs, 40.0, object_side=0.15, object_px=32.0) == 224
    assert choose_input_size(epochs, 40.0, object_side=0.2, object_px=32.0) == 192  # 38.4 px at 192
    assert choose_input_size(epochs, 40.0, object_side=0.1, object_px=32.0) == 256  # 25.6 px at 256: the largest
    assert choose_input_size(epochs, 50.0, object_side=0.1, object_px=32.0) == 224  # 256 is not affordable
    assert choose_input_size(epochs, 100.0, object_side=0.1, object_px=32.0) == 192  # nothing is
    assert choose_input_size(epochs, 40.0, object_side=None, object_px=32.0) == 256  # no objects: no limit
    assert choose_input_size(epochs, 40.0, object_side=0.2, object_px=None) == 256


def _record(width, height, boxes, crowd=()):
    objects = [SimpleNamespace(box_xyxy=box, is_crowd=False) for box in boxes]
    objects += [SimpleNamespace(box_xyxy=box, is_crowd=True) for box in crowd]
    return SimpleNamespace(width=width, height=height, objects=objects)


def test_median_object_side_is_relative_to_each_image():
    records = [_record(200, 100, [(0, 0, 50, 25), (10, 10, 30, 20)], crowd=[(0, 0, 200, 100)]),
               _record(400, 400, [(0, 0, 100, 100)]), _record(300, 300, [])]
    # sqrt(0.25 * 0.25) = 0.25, sqrt(0.1 * 0.1) = 0.1, sqrt(0.25 * 0.25) = 0.25; the crowd box is left out
    assert median_object_side(records) == pytest.approx(0.25)
    assert median_object_side([_record(300, 300, [])]) is None


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_probe_steps_run_in_turn_and_give_medians(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("yolact.utils.timing.time", SimpleNamespace(perf_counter=clock))
    calls = []
    costs = {48: [9.0, 9.0, 0.25, 0.75, 0.5], 64: [9.0, 9.0, 1.0, 2.0, 1.5]}  # 2 warm-up steps, then 3 timed

    def make_step(size):
        def step():
            clock.now += costs[size][sum(1 for called in calls if called == size)]
            calls.append(size)
        return step

    step_s = time_probe_steps(make_step, [48, 64], device=CPU)
    assert step_s == {48: 0.5, 64: 1.5}
    assert calls == [48, 48, 64, 64, 48, 64, 48, 64, 48, 64]  # warm-up, then one of each per round


def _config(**train):
    overrides = [f"train.{key}={value}" for key, value in train.items()]
    return with_num_classes(load_config("small", overrides), 3)


# 400 images, each with one object of a tenth of its side: 19 px at 192, 26 px at 256
SMALL_OBJECTS = [_record(300, 200, [(0, 0, 30, 20)])] * 400


def test_choice_logs_the_estimates_and_sets_the_input_size(monkeypatch, caplog):
    measured = {192: 0.2, 224: 0.28, 256: 0.36}
    monkeypatch.setattr(input_size_choice, "time_probe_steps", lambda make_step, sizes, device: measured)
    config = _config(time=15, time_input_sizes="[256,192,224]")
    with caplog.at_level(logging.INFO, logger="yolact"):
        chosen, seconds, summary = choose_time_input_size(config, records=SMALL_OBJECTS, device=CPU)
    assert chosen.model.input_size == 256 and seconds >= 0.0 and summary in caplog.text
    assert chosen.train == config.train and chosen.model.anchor_scales == config.model.anchor_scales
    assert summary == ("train.time_input_sizes [192, 224, 256], 400 training images in 15 min: "
                       "192 px 0.200 s/step, 81 epochs, 224 px 0.280 s/step, 58 epochs, 256 px 0.360 s/step, "
                       "45 epochs; input 256 px, the largest with 40 epochs (the median object spans 26 px)")
    # a machine twice as slow: 192 px (40.5 epochs) only
    monkeypatch.setattr(input_size_choice, "time_probe_steps",
                        lambda make_step, sizes, device: {size: 2 * s for size, s in measured.items()})
    assert choose_time_input_size(config, records=SMALL_OBJECTS, device=CPU).config.model.input_size == 192
    # three times as slow: none reaches 40 epochs
    monkeypatch.setattr(input_size_choice, "time_probe_steps",
                        lambda make_step, sizes, device: {size: 3 * s for size, s in measured.items()})
    summary = choose_time_input_size(config, records=SMALL_OBJECTS, device=CPU).summary
    assert summary.endswith("input 192 px, the smallest: none leaves 40 epochs")
    # objects a sixth of the side: 32 px at 192 already, nothing is timed
    monkeypatch.setattr(input_size_choice, "time_probe_steps", pytest.fail)
    larger = [_record(300, 200, [(0, 0, 50, 100 / 3)])] * 400
    choice = choose_time_input_size(config, records=larger, device=CPU)
    assert choice.config.model.input_size == 192
    assert choice.summary.endswith("input 192 px, where the median object already spans 32 px "
                                   "(train.time_object_px 32)")
    # an eighth of the side: 24 px at 192, 28 at 224, 32 at 256
    monkeypatch.setattr(input_size_choice, "time_probe_steps", lambda make_step, sizes, device: measured)
    medium = [_record(400, 400, [(0, 0, 50, 50)])] * 400
    summary = choose_time_input_size(config, records=medium, device=CPU).summary
    assert summary.endswith("input 256 px, the smallest with 40 epochs where the median object spans 32 px "
                            "(at least 32)")


def test_no_choice_without_a_budget_or_candidates(monkeypatch):
    monkeypatch.setattr(input_size_choice, "time_probe_steps", pytest.fail)
    for config in (_config(time="null", time_input_sizes="[192,256]"), _config(time=15, time_input_sizes="[]")):
        assert choose_time_input_size(config, records=SMALL_OBJECTS, device=CPU) == (config, 0.0, "")


@pytest.mark.parametrize("key, value, message", [
    ("time_input_sizes", "[0,192]", "train.time_input_sizes must be positive sizes in px, got [0, 192]"),
    ("time_min_epochs", "0", "train.time_min_epochs must be positive, got 0"),
])
def test_bad_candidates_are_refused(key, value, message):
    config = _config(time=15, **{"time_input_sizes": "[192]", key: value})
    with pytest.raises(YolactError, match=message.replace("[", r"\[").replace("]", r"\]")):
        choose_time_input_size(config, records=SMALL_OBJECTS, device=CPU)


def test_the_probe_times_real_steps_of_the_config(tmp_path):
    config = with_num_classes(load_config("small", tiny_overrides(tmp_path, tmp_path)), 3)
    make_step = input_size_choice._make_probe_step(config, CPU, batch_per_rank=2)
    step_s = time_probe_steps(make_step, [32, 64], device=CPU, warmup=1, repeats=1)
    assert sorted(step_s) == [32, 64] and all(seconds > 0 for seconds in step_s.values())


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory):
    return make_tiny_shapes(tmp_path_factory.mktemp("shapes"))


@pytest.mark.slow
@pytest.mark.parametrize("min_epochs, expected", [(0.001, 64), (1e9, 48)])
def test_train_py_trains_at_the_chosen_size_and_a_resume_keeps_it(shapes_root, tmp_path, monkeypatch, min_epochs,
                                                                  expected):
    probes = []
    real_probe = input_size_choice.time_probe_steps
    monkeypatch.setattr(input_size_choice, "time_probe_steps",
                        lambda *args, **kwargs: probes.append(real_probe(*args, **kwargs)) or probes[-1])
    overrides = tiny_overrides(shapes_root, tmp_path, **{"train.time": 0.1, "train.time_input_sizes": "[64,48]",
                                                         "train.time_min_epochs": min_epochs,
                                                         "train.time_object_px": "null", "train.val_interval": 0})
    assert train.main(["--config", "small", "--name", "sized"] + overrides) == 0
    run_dir = tmp_path / "sized"
    assert len(probes) == 1 and sorted(probes[0]) == [48, 64]
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["input_size"] == expected
    last = load_checkpoint(run_dir / "weights" / "last.pth")
    assert last["config"]["model"]["input_size"] == expected
    log = (run_dir / "train.log").read_text()
    assert "train.time_input_sizes [48, 64], 8 training images in 0.1 min: 48 px " in log
    assert f"input {expected} px" in log
    if expected == 64:
        return
    # (48 px is not the config's 64: the datasets were built again at 48)
    # a resume with a longer budget keeps the checkpoint's size and does not time the candidates again
    monkeypatch.setattr(input_size_choice, "time_probe_steps", pytest.fail)
    assert train.main(["--config", "small", "--resume", str(run_dir), "train.time=0.3"]) == 0
    assert load_checkpoint(run_dir / "weights" / "last.pth")["config"]["model"]["input_size"] == expected
    log = (run_dir / "train.log").read_text()
    assert "(resumed)" in log and log.count("train.time_input_sizes [") == 1


def _probe_on_rank(rank, world_size):
    """Rank r's steps cost (r + 1) x the size's base cost on a fake clock."""
    import yolact.utils.timing as timing

    clock = FakeClock()
    timing.time = SimpleNamespace(perf_counter=clock)
    base = {48: 0.1, 64: 0.3}

    def make_step(size):
        def step():
            clock.now += base[size] * (rank + 1)
        return step

    return time_probe_steps(make_step, [48, 64], device=CPU)


@pytest.mark.slow
def test_every_rank_gets_the_mean_of_the_ranks_timings(tmp_path):
    from tests.engine.gloo_group import run_in_gloo_group

    results = run_in_gloo_group(_probe_on_rank, 2, tmp_path / "out")
    assert results[0] == results[1]
    assert results[0] == {48: pytest.approx(0.15), 64: pytest.approx(0.45)}
