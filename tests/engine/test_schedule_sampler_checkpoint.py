"""LR schedule, resumable sampler and checkpoint files: exact values and fault behaviour."""
import os
import pickle

import pytest
import torch

from yolact.engine.checkpoint import CHECKPOINT_FORMAT, capture_rng_state, load_checkpoint, restore_rng_state, save_atomic
from yolact.engine.train.lr_schedule import autoscale_schedule, learning_rate_at
from yolact.data.sampler import ResumableBatchSampler
from yolact.errors import YolactError

SCHEDULE = dict(base_lr=1e-3, warmup_init_lr=1e-4, warmup_iters=500, lr_steps=(280000, 600000), gamma=0.1)


def test_warmup_then_steps():
    assert learning_rate_at(0, **SCHEDULE) == pytest.approx(1e-4)
    assert learning_rate_at(250, **SCHEDULE) == pytest.approx(5.5e-4)
    assert learning_rate_at(500, **SCHEDULE) == pytest.approx(1e-3)
    assert learning_rate_at(501, **SCHEDULE) == 1e-3
    assert learning_rate_at(279999, **SCHEDULE) == 1e-3
    assert learning_rate_at(280000, **SCHEDULE) == pytest.approx(1e-4)
    assert learning_rate_at(600000, **SCHEDULE) == pytest.approx(1e-5)


def test_autoscale_like_the_reference():
    lr, max_iter, steps = autoscale_schedule(batch_size=4, base_batch_size=8, lr=1e-3, max_iter=800000,
                                             lr_steps=(280000, 600000, 700000, 750000))
    assert (lr, max_iter, steps) == (5e-4, 1600000, (560000, 1200000, 1400000, 1500000))
    assert autoscale_schedule(batch_size=24, base_batch_size=8, lr=1e-3, max_iter=800000, lr_steps=(280000,)) == (
        pytest.approx(3e-3), 266666, (93333,))


def test_sampler_resumes_exactly_and_shards():
    straight = ResumableBatchSampler(dataset_size=10, batch_size=3, seed=5)
    first = [batch for batch, _ in zip(straight, range(7))]
    resumed = ResumableBatchSampler(dataset_size=10, batch_size=3, seed=5, start_iteration=4)
    assert [batch for batch, _ in zip(resumed, range(3))] == first[4:]
    # 3 full batches per epoch: every epoch is a permutation slice without repeats
    epoch0 = [key.index for batch in first[:3] for key in batch]
    assert len(set(epoch0)) == 9
    assert [key.epoch for key in first[2] + first[3]] == [0, 0, 0, 1, 1, 1]
    assert {key.seed for batch in first for key in batch} == {5}
    ranks = [ResumableBatchSampler(dataset_size=10, batch_size=2, seed=5, rank=r, world_size=2).batch_at(1)
             for r in range(2)]
    single = ResumableBatchSampler(dataset_size=10, batch_size=4, seed=5).batch_at(1)
    assert ranks[0] + ranks[1] == single


def test_atomic_save_keeps_old_file_when_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "last.pth"
    save_atomic({"format": CHECKPOINT_FORMAT, "iteration": 1}, path)

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_atomic({"format": CHECKPOINT_FORMAT, "iteration": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["iteration"] == 1
    assert os.listdir(tmp_path) == ["last.pth"]  # no temporary left behind


def test_crash_between_write_and_rename_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pth"
    save_atomic({"format": CHECKPOINT_FORMAT, "iteration": 1}, path)
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"format": CHECKPOINT_FORMAT, "iteration": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["iteration"] == 1


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_malicious_pickle_is_refused_not_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"model": Exploit()}, handle)
    with pytest.raises(YolactError, match=r"evil.pth: (refused to load|unreadable checkpoint)"):
        load_checkpoint(path)
    torch.save({"format": CHECKPOINT_FORMAT, "model": {}, "payload": Exploit()}, tmp_path / "evil2.pth")
    with pytest.raises(YolactError, match=r"evil2.pth: refused to load"):
        load_checkpoint(tmp_path / "evil2.pth")
    assert not (tmp_path / "PWNED").exists()


def test_bad_checkpoint_files(tmp_path):
    with pytest.raises(YolactError, match=r"nothere.pth: checkpoint not found"):
        load_checkpoint(tmp_path / "nothere.pth")
    (tmp_path / "trunc.pth").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(YolactError, match=r"trunc.pth: unreadable checkpoint"):
        load_checkpoint(tmp_path / "trunc.pth")
    bare = {"conv.weight": torch.ones(2)}
    torch.save(bare, tmp_path / "bare.pth")
    assert torch.equal(load_checkpoint(tmp_path / "bare.pth")["model"]["conv.weight"], torch.ones(2))


def test_rng_state_round_trip(tmp_path):
    import random

    import numpy as np
    state = capture_rng_state()
    save_atomic({"format": CHECKPOINT_FORMAT, "rng": state}, tmp_path / "rng.pth")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(load_checkpoint(tmp_path / "rng.pth")["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]
