"""Checkpoint hooks with a stub trainer: periodic and last saves, best.pth from validation, hook states."""
import pytest

from tests.engine.train.test_trainer import make_trainer
from yolact.config import load_config
from yolact.engine.checkpoint import load_checkpoint
from yolact.engine.train.hooks import BestCheckpointer, Checkpointer, HookBase, interval_due, last_multiple
from yolact.engine.train.validation_hook import ValidationHook


class Counter(HookBase):
    """A hook with a state: the steps it has seen, kept across a resume."""

    def __init__(self):
        self.steps = 0

    def after_step(self, trainer):
        self.steps += 1

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = state.get("steps", 0)


def checkpointer(run_dir, save_interval=2):
    return Checkpointer(run_dir, config=load_config("shapes"), class_names=["a"], category_ids=[1],
                        save_interval=save_interval)


def test_periodic_last_and_best_checkpoints_with_hook_state(tmp_path):
    (tmp_path / "weights").mkdir()
    saver, counter = checkpointer(tmp_path), Counter()
    aps = iter([0.5, 0.25, 0.75])  # validations at iterations 1, 2 and the final one at 3
    validation = ValidationHook(interval=1, evaluate=lambda model: ({"segm/AP": next(aps)}, "summary"),
                                visualize=lambda model: [])
    trainer = make_trainer(hooks=[saver, validation, BestCheckpointer(saver), counter], max_iter=3, lr=0.0)
    state = trainer.train()
    assert sorted(p.name for p in (tmp_path / "weights").iterdir()) == ["best.pth", "iter_0000002.pth", "last.pth"]
    best, last = load_checkpoint(tmp_path / "weights" / "best.pth"), load_checkpoint(tmp_path / "weights" / "last.pth")
    assert (best["iteration"], best["best_mask_ap"], best["metrics"]) == (3, 0.75, {"segm/AP": 0.75})
    assert (last["iteration"], last["hooks"]) == (3, {"Counter": {"steps": 3}})
    assert set(last) == {"format", "model", "optimizer", "scaler", "iteration", "best_mask_ap", "rng", "config",
                         "class_names", "category_ids", "metrics", "hooks"}
    assert (state.validation.iteration, state.validation.summary, state.best_mask_ap) == (3, "summary", 0.75)
    resumed = Counter()
    resumed.load_state_dict(last["hooks"]["Counter"])
    assert resumed.steps == 3


def test_no_hook_state_no_hooks_key_and_no_save_after_an_error(tmp_path):
    (tmp_path / "weights").mkdir()
    saver = checkpointer(tmp_path, save_interval=0)
    make_trainer(hooks=[saver], max_iter=1).train()
    assert "hooks" not in load_checkpoint(tmp_path / "weights" / "last.pth")

    class Boom(HookBase):
        def after_step(self, trainer):
            raise RuntimeError("boom")

    (tmp_path / "weights" / "last.pth").unlink()
    with pytest.raises(RuntimeError, match="boom"):
        make_trainer(hooks=[Boom(), saver], max_iter=1).train()
    assert not (tmp_path / "weights" / "last.pth").exists()


def test_pruning_rule_keeps_the_newest_periodic_files_only(tmp_path):
    from yolact.engine.train.hooks import checkpoints_to_prune

    for name in ("iter_0000010.pth", "iter_0000002.pth", "iter_0000100.pth", "best.pth", "last.pth"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in checkpoints_to_prune(tmp_path, 2)] == ["iter_0000002.pth"]
    assert [p.name for p in checkpoints_to_prune(tmp_path, 1)] == ["iter_0000002.pth", "iter_0000010.pth"]
    assert checkpoints_to_prune(tmp_path, 0) == [] and checkpoints_to_prune(tmp_path, 5) == []


def test_checkpointer_keeps_last_n_periodic_plus_best_and_last(tmp_path):
    (tmp_path / "weights").mkdir()
    saver = Checkpointer(tmp_path, config=load_config("shapes"), class_names=["a"], category_ids=[1],
                         save_interval=1, keep_checkpoints=2)
    aps = iter([0.9, 0.1, 0.1, 0.1, 0.1, 0.1])  # best at iteration 1, whose iter_ file is pruned later
    validation = ValidationHook(interval=1, evaluate=lambda model: ({"segm/AP": next(aps)}, "summary"),
                                visualize=lambda model: [])
    make_trainer(hooks=[saver, validation, BestCheckpointer(saver)], max_iter=6, lr=0.0).train()
    names = sorted(p.name for p in (tmp_path / "weights").iterdir())
    assert names == ["best.pth", "iter_0000004.pth", "iter_0000005.pth", "last.pth"]
    assert load_checkpoint(tmp_path / "weights" / "best.pth")["iteration"] == 1
    assert load_checkpoint(tmp_path / "weights" / "last.pth")["iteration"] == 6


def test_a_disabled_checkpointer_prunes_nothing():
    """Ranks other than 0 have no weights folder: saving and pruning are both no-ops."""
    saver = Checkpointer(None, config=load_config("shapes"), class_names=["a"], category_ids=[1], save_interval=1,
                         keep_checkpoints=1)
    make_trainer(hooks=[saver], max_iter=3).train()


def test_a_re_planned_save_interval_counts_from_the_last_save(tmp_path):
    """F_b0 of the learning benchmark saved at 661, 695 and 713 as train.time moved the interval."""
    (tmp_path / "weights").mkdir()
    saver = checkpointer(tmp_path, save_interval=4)

    class Replan(HookBase):
        def after_step(self, trainer):
            saver.save_interval = {4: 6, 5: 5}.get(trainer.state.iteration, saver.save_interval)

    make_trainer(hooks=[saver, Replan()], max_iter=16, lr=0.0).train()
    # 5 after 4, then 5 after 9; the multiples of the moving interval would have saved at 4, 5, 10, 15
    assert sorted(p.name for p in (tmp_path / "weights").iterdir()) == [
        "iter_0000004.pth", "iter_0000009.pth", "iter_0000014.pth", "last.pth"]


def test_a_resumed_run_keeps_saving_at_the_multiples(tmp_path):
    (tmp_path / "weights").mkdir()
    trainer = make_trainer(hooks=[checkpointer(tmp_path, save_interval=4)], max_iter=10, lr=0.0)
    trainer.state.iteration = 5
    trainer.train()
    assert sorted(p.name for p in (tmp_path / "weights").iterdir()) == ["iter_0000008.pth", "last.pth"]


def test_interval_rule_counts_from_the_last_action_and_never_at_or_just_before_the_end():
    # a fixed interval of 4 over 10 iterations: due at 4 and 8 (10 is the end, which has its own action)
    last, due = 0, []
    for iteration in range(1, 11):
        if interval_due(iteration, last, 4, max_iter=10):
            due.append(iteration)
            last = iteration
    assert due == [4, 8]
    # a re-plan from 6 to 3 just after an action at 6: the next is at 9, not at once (no cluster)
    assert [i for i in range(7, 10) if interval_due(i, 6, 3, max_iter=20)] == [9]
    assert not interval_due(5, 0, 0, max_iter=10)  # 0: never
    # the end re-planned to 5 iterations after a multiple of 950: the final action there stands for it
    assert not interval_due(2845, 1895, 950, max_iter=2850)
    assert interval_due(2755, 1805, 950, max_iter=2850)  # 95 before the end, a tenth: still due
    assert not interval_due(2756, 1806, 950, max_iter=2850)
    assert [last_multiple(i, 4) for i in (0, 3, 4, 7, 9)] == [0, 0, 4, 4, 8]
    assert last_multiple(7, 0) == 7
