"""data.augment.close_mosaic_fraction: the switch iteration by hand, the hook on a fake trainer,
the batches after the switch against an unmixed loader, and train.py (the losses before and after
the switch, and a resume past it)."""
import csv
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

import train
from tests.engine.tiny_run import make_tiny_shapes, tiny_overrides
from yolact.build import build_dataset
from yolact.config import load_config
from yolact.data.hard_shapes import make_hard_shapes
from yolact.data.loader import make_train_loader
from yolact.engine.train.close_mosaic import CloseMosaicHook, close_mosaic_iteration
from yolact.errors import YolactError


@pytest.mark.parametrize("max_iter, fraction, expected", [(2400, 0.1, 2160), (6, 0.5, 3), (7, 0.5, 3),
                                                           (10, 0.04, 10), (4518, 0.1, 4066)])
def test_the_switch_iteration_by_hand(max_iter, fraction, expected):
    assert close_mosaic_iteration(max_iter, fraction) == expected


def _fake_trainer(max_iter):
    return SimpleNamespace(state=SimpleNamespace(iteration=0), max_iter=max_iter, batches="mixed")


def test_the_hook_switches_once_at_the_current_plans_iteration():
    dataset, started = SimpleNamespace(mixer="a mixer"), []
    hook = CloseMosaicHook(0.2, dataset, lambda start: started.append(start) or f"unmixed from {start}")
    trainer = _fake_trainer(20)
    for iteration in range(12):  # 20 - round(4) = 16: not yet
        trainer.state.iteration = iteration
        hook.before_step(trainer)
    assert dataset.mixer == "a mixer" and trainer.batches == "mixed" and started == []
    trainer.max_iter = 15  # a time budget shortened the plan: 15 - round(3) = 12
    for iteration in range(12, 15):
        trainer.state.iteration = iteration
        hook.before_step(trainer)
    assert dataset.mixer is None and trainer.batches == "unmixed from 12" and started == [12]
    assert hook.closed_at == 12


def test_a_resume_past_the_switch_switches_at_its_first_step():
    dataset, started = SimpleNamespace(mixer="a mixer"), []
    hook = CloseMosaicHook(0.5, dataset, lambda start: started.append(start) or "unmixed")
    trainer = _fake_trainer(10)
    trainer.state.iteration = 8
    hook.before_step(trainer)
    assert dataset.mixer is None and started == [8]


def test_no_switch_before_the_time_budget_has_planned():
    dataset, started, plan = SimpleNamespace(mixer="a mixer"), [], {"made": False}
    hook = CloseMosaicHook(0.5, dataset, lambda start: started.append(start) or "unmixed",
                           planned=lambda: plan["made"])
    trainer = _fake_trainer(14)  # a time budget's placeholder length before its plan
    trainer.state.iteration = 13
    hook.before_step(trainer)
    assert dataset.mixer == "a mixer" and started == []
    plan["made"], trainer.max_iter = True, 400
    hook.before_step(trainer)
    assert dataset.mixer == "a mixer" and started == []  # 400 - 200: not yet
    trainer.state.iteration = 200
    hook.before_step(trainer)
    assert dataset.mixer is None and started == [200]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_the_hook_refuses_a_fraction_outside_0_1(fraction):
    with pytest.raises(ValueError, match="close_mosaic_fraction must be in"):
        CloseMosaicHook(fraction, SimpleNamespace(mixer=None), lambda start: iter(()))


@pytest.fixture(scope="module")
def hard_set(tmp_path_factory):
    return make_hard_shapes(tmp_path_factory.mktemp("hard"), style="a", num_train=12, num_val=2, seed=1)


def _config(hard_set, *extra):
    train_dir, val_dir = hard_set
    return load_config("small", [f"data.train_images={train_dir / 'images'}",
                                 f"data.train_annotations={train_dir / 'annotations.json'}",
                                 f"data.val_images={val_dir / 'images'}",
                                 f"data.val_annotations={val_dir / 'annotations.json'}",
                                 "model.input_size=96", "data.augment.mosaic_prob=1", *extra])


def test_after_the_switch_the_batches_are_those_of_an_unmixed_loader(hard_set):
    config = _config(hard_set, "data.augment.close_mosaic_fraction=0.25")
    mixed = build_dataset(config, "train")

    def batches_from(dataset, start):
        return iter(make_train_loader(dataset, batch_size=4, seed=5, start_iteration=start))

    trainer = _fake_trainer(8)
    trainer.batches = batches_from(mixed, 0)
    hook = CloseMosaicHook(0.25, mixed, lambda start: batches_from(mixed, start))
    trainer.state.iteration = 6  # 8 - round(2)
    hook.before_step(trainer)
    images, targets = next(trainer.batches)
    unmixed = build_dataset(_config(hard_set, "data.augment.mosaic_prob=0", "data.augment.copy_paste_prob=0"),
                            "train")
    assert unmixed.mixer is None
    expected_images, expected_targets = next(batches_from(unmixed, 6))
    assert images.equal(expected_images)
    for target, expected in zip(targets, expected_targets):
        assert np.array_equal(np.asarray(target["boxes"]), np.asarray(expected["boxes"]))
        assert np.array_equal(np.asarray(target["masks"]), np.asarray(expected["masks"]))
    mixed_images, _ = next(batches_from(build_dataset(config, "train"), 6))
    assert not mixed_images.equal(images)  # every image of the mixed loader is a mosaic


@pytest.mark.parametrize("value", ["-0.1", "1", "1.5"])
def test_a_bad_fraction_names_the_key(hard_set, value):
    with pytest.raises(YolactError, match=r"data.augment.close_mosaic_fraction must be in \[0, 1\)"):
        build_dataset(_config(hard_set, f"data.augment.close_mosaic_fraction={value}"), "train")


def test_recipes_mix_to_the_end_by_default():
    for name in ("coco", "small", "shapes"):
        assert load_config(name).data.augment.close_mosaic_fraction == 0.0


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory):
    return make_tiny_shapes(tmp_path_factory.mktemp("shapes"))


def _losses(run_dir):
    with open(run_dir / "metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("loss_total")]
    return {int(row["iteration"]): float(row["loss_total"]) for row in rows}


@pytest.mark.slow
def test_train_py_switches_and_a_resume_past_the_switch_continues_exactly(shapes_root, tmp_path, capsys):
    def run(name, fraction):
        overrides = tiny_overrides(shapes_root, tmp_path, **{"train.max_iter": 6, "train.val_interval": 0,
                                                             "data.augment.mosaic_prob": 1,
                                                             "data.augment.close_mosaic_fraction": fraction})
        assert train.main(["--config", "shapes", "--name", name, "--no-eval"] + overrides) == 0
        return tmp_path / name

    mixed = _losses(run("mixed", 0))
    assert "mosaic and copy-paste off" not in "".join(capsys.readouterr())
    closed_dir = run("closed", 0.5)
    assert ("iteration 3: mosaic and copy-paste off for the last 3 of 6 iterations "
            "(data.augment.close_mosaic_fraction 0.5)") in "".join(capsys.readouterr())
    closed = _losses(closed_dir)
    assert [closed[i] for i in (1, 2, 3)] == [mixed[i] for i in (1, 2, 3)]  # the same mosaics until the switch
    assert all(closed[i] != mixed[i] for i in (4, 5, 6))  # then unmixed images
    # killed after iteration 6 with the last checkpoint at 4: the resume switches at its first step
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(closed_dir, resumed_dir)
    (resumed_dir / "weights" / "last.pth").unlink()
    shutil.copy(resumed_dir / "weights" / "iter_0000004.pth", resumed_dir / "weights" / "last.pth")
    assert train.main(["--config", "shapes", "--resume", str(resumed_dir), "--no-eval"]) == 0
    assert "iteration 4: mosaic and copy-paste off for the last 2 of 6 iterations" in "".join(capsys.readouterr())
    resumed = _losses(resumed_dir)
    for iteration in (5, 6):
        assert resumed[iteration] == pytest.approx(closed[iteration], rel=1e-5, abs=1e-7)
