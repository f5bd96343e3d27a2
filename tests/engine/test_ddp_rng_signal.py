"""Two gloo processes (issue 13, defects 3 and 4): each rank's own generators are saved and
restored, also on another number of processes; a signal to one rank stops every rank at the same
iteration and rank 0 saves."""
import os
import random
import signal
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.engine.gloo_group import run_in_gloo_group
from yolact.config import load_config
from yolact.engine.checkpoint import load_checkpoint, restore_rng_state
from yolact.engine.runtime import seed_everything
from yolact.engine.train.hooks import Checkpointer, HookBase
from yolact.engine.train.trainer import Trainer, TrainState

pytestmark = pytest.mark.slow  # spawned processes: about 20 s each on two cores


def _draws():
    return torch.rand(3), np.random.rand(2), random.random()


def _same(a, b) -> bool:
    return torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def _checkpointer(run_dir, rank: int) -> Checkpointer:
    return Checkpointer(run_dir if rank == 0 else None, config=load_config("shapes"), class_names=["square"],
                        category_ids=[1], save_interval=0, enabled=rank == 0)


def _save_rng(rank, world_size, run_dir):
    seed_everything(100 + rank)
    model = torch.nn.Linear(2, 1)
    trainer = SimpleNamespace(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), scaler=None,
                              state=TrainState(iteration=3), hooks=[], device=torch.device("cpu"))
    _checkpointer(run_dir, rank).save(trainer)
    return _draws()


def _resume_rng(rank, world_size, path):
    seed_everything(999)
    notes = restore_rng_state(load_checkpoint(path)["rng"], torch.device("cpu"), rank=rank, world_size=world_size)
    return notes, _draws()


def test_each_rank_saves_and_restores_its_own_generators(tmp_path):
    expected = run_in_gloo_group(_save_rng, 2, tmp_path / "save", tmp_path)
    assert not _same(expected[0], expected[1])  # seeds 100 and 101: the ranks draw differently
    path = tmp_path / "weights" / "last.pth"
    saved = load_checkpoint(path)["rng"]
    assert isinstance(saved, list) and len(saved) == 2
    resumed = run_in_gloo_group(_resume_rng, 2, tmp_path / "resume", path)
    for rank in range(2):
        notes, draws = resumed[rank]
        assert notes == [] and _same(draws, expected[rank])
    # one process resumes a two-process run: rank 0's generators, with a note
    seed_everything(999)
    notes = restore_rng_state(saved, torch.device("cpu"), rank=0, world_size=1)
    assert _same(_draws(), expected[0])
    assert notes == ["the checkpoint was saved by 2 process(es), this run has 1: random draws outside the data "
                     "pipeline differ from an uninterrupted run"]


def test_a_rank_beyond_the_saved_ones_keeps_its_seed():
    saved = [{"torch": torch.get_rng_state(), "numpy": None, "python": None}]
    notes = restore_rng_state(saved, torch.device("cpu"), rank=1, world_size=2)
    assert notes[-1] == "no RNG state saved for rank 1: its generators keep their seed"


def test_an_old_single_state_checkpoint_still_restores(monkeypatch):
    """Before per-rank states, ``rng`` was one dict with every visible GPU's state under ``cuda``."""
    from yolact.engine import checkpoint

    torch.manual_seed(5)
    old = checkpoint.capture_rng_state()
    expected = _draws()
    old["cuda"] = [torch.zeros(8, dtype=torch.uint8), torch.ones(8, dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda value, device: restored.append((value[0].item(), device)))
    notes = restore_rng_state(old, torch.device("cuda", 1))
    assert notes == [] and restored == [(1, torch.device("cuda", 1))]
    assert _same(_draws(), expected)


class _SignalAt(HookBase):
    """Sends SIGTERM to this process before iteration ``iteration`` on rank ``rank``."""

    def __init__(self, rank: int, iteration: int):
        self.rank, self.iteration = rank, iteration

    def before_step(self, trainer) -> None:
        if trainer.state.iteration == self.iteration and int(os.environ["RANK"]) == self.rank:
            os.kill(os.getpid(), signal.SIGTERM)


class _Linear(torch.nn.Linear):
    def forward(self, images):
        return {"out": super().forward(images)}


class _SquareLoss(torch.nn.Module):
    loss_weights = {"loss_square": 1.0}

    def forward(self, outputs, targets):
        return {"loss_square": (outputs["out"] ** 2).mean()}


def _batches():
    generator = torch.Generator().manual_seed(int(os.environ["RANK"]))
    while True:
        yield torch.randn(2, 2, generator=generator), [{"image_id": 0}]


def _train_until_signal(rank, world_size, run_dir):
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(_Linear(2, 1))
    trainer = Trainer(model=model, criterion=_SquareLoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
                      batches=_batches(), device=torch.device("cpu"), lr_at=lambda iteration: 0.01, max_iter=20,
                      hooks=[_checkpointer(run_dir, rank), _SignalAt(rank=1, iteration=2)])
    state = trainer.train()
    return state.iteration, state.stop_reason


def test_sigterm_on_one_rank_stops_every_rank_at_the_same_iteration(tmp_path):
    results = run_in_gloo_group(_train_until_signal, 2, tmp_path / "out", tmp_path)
    # rank 1 is signalled before iteration 2; the ranks agree in that step, which completes
    assert results == [(3, "a signal on another rank"), (3, "SIGTERM")]
    assert load_checkpoint(Path(tmp_path) / "weights" / "last.pth")["iteration"] == 3
