"""The training step's own host syncs (issue 13, defect 6): one per step for the agreement on
[loss finite, stop asked], plus one every ``log_interval`` steps to read the losses."""
import pytest
import torch

from tests.sync_counter import SyncCounter
from yolact.engine.train.trainer import Trainer


class _Linear(torch.nn.Linear):
    def forward(self, images):
        return {"out": super().forward(images)}


class _SquareLoss(torch.nn.Module):
    loss_weights = {"loss_square": 1.0, "loss_mean": 2.0}

    def forward(self, outputs, targets):
        out = outputs["out"]
        return {"loss_square": (out ** 2).mean(), "loss_mean": 2 * out.mean().abs()}


def _batches():
    generator = torch.Generator().manual_seed(0)
    while True:
        yield torch.randn(2, 2, generator=generator), [{"image_id": 0}, {"image_id": 1}]


def test_one_sync_per_step_and_one_more_per_logged_step():
    torch.manual_seed(0)
    model = _Linear(2, 1)
    trainer = Trainer(model=model, criterion=_SquareLoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                      batches=_batches(), device=torch.device("cpu"), lr_at=lambda iteration: 0.1, max_iter=10,
                      log_interval=4)
    trainer.run_step()  # the optimizer's first step builds its state (and syncs while at it)
    counts, logged, scalars = [], [], {}
    for _ in range(8):
        with SyncCounter() as counter:
            assert trainer.run_step()
        counts.append(counter.count)
        logged.append("loss_total" in trainer.last_scalars)
        scalars = trainer.last_scalars if logged[-1] else scalars
    assert counts == [1, 1, 2, 1, 1, 1, 2, 1], counter.summary()  # iterations 2..9: 4 and 8 are logged
    assert logged == [False, False, True, False, False, False, True, False]
    assert scalars["loss_total"] == pytest.approx(scalars["loss_square"] + scalars["loss_mean"], rel=1e-6)
    assert scalars["unweighted/loss_mean"] == scalars["loss_mean"] / 2.0
