"""The weight average: its update against the hand formula, validation on the average, and the
checkpoint round trip (raw weights for resuming, the average for inference)."""
import math

import pytest
import torch
from torch import nn

from tests.engine.train.test_trainer import make_trainer
from yolact.config import load_config
from yolact.engine.checkpoint import load_checkpoint
from yolact.engine.train.ema import EmaHook, ModelEma, inference_state_dict
from yolact.engine.train.hooks import Checkpointer
from yolact.engine.train.validation_hook import ValidationHook


def test_update_is_the_hand_formula():
    model = nn.BatchNorm1d(1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.running_mean.fill_(0.0)
    ema = ModelEma(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(3.0)
        model.running_mean.fill_(4.0)
        model.num_batches_tracked.fill_(7)
    ema.update(model)
    assert ema.module.weight.item() == 2.0        # 0.5 * 1 + 0.5 * 3
    assert ema.module.running_mean.item() == 2.0  # buffers are averaged too
    assert ema.module.num_batches_tracked.item() == 7  # integers are copied
    assert not ema.module.weight.requires_grad and not ema.module.training
    ema.update(model)
    assert ema.module.weight.item() == 2.5


def test_the_decay_ramps_up():
    ema = ModelEma(nn.Linear(1, 1), decay=0.9, tau=10.0)
    assert ema.decay_at(1) == 0.9 * (1 - math.exp(-0.1))
    assert ema.decay_at(100) == 0.9 * (1 - math.exp(-10.0))
    assert ModelEma(nn.Linear(1, 1), decay=0.9).decay_at(1) == 0.9


def test_validation_and_checkpoints_use_the_average_raw_weights_stay(tmp_path):
    (tmp_path / "weights").mkdir()
    evaluated = []
    ema = EmaHook(decay=0.5)
    validation = ValidationHook(interval=1, model_source=ema.averaged_model,
                                evaluate=lambda model: (evaluated.append(model.weight.item()) or {}, ""),
                                visualize=lambda model: [])
    saver = Checkpointer(tmp_path, config=load_config("shapes"), class_names=["a"], category_ids=[1],
                         save_interval=0)
    # stub: loss 2w + w^2 / 2 per unit input; lr 0.1: w 1 -> 1 - 0.1 * 3 = 0.7 -> 0.7 - 0.1 * 2.7 = 0.43
    trainer = make_trainer(hooks=[ema, saver, validation], max_iter=2, lr=0.1)
    trainer.train()
    assert trainer.model.weight.item() == pytest.approx(0.43)
    assert evaluated == pytest.approx([0.85, 0.64])  # 0.5 * 1 + 0.5 * 0.7, then 0.5 * 0.85 + 0.5 * 0.43
    assert trainer.model.training
    checkpoint = load_checkpoint(tmp_path / "weights" / "last.pth")
    assert checkpoint["model"]["weight"].item() == pytest.approx(0.43)
    assert checkpoint["hooks"]["EmaHook"]["updates"] == 2
    assert inference_state_dict(checkpoint)["weight"].item() == pytest.approx(0.64)
    assert inference_state_dict({"model": checkpoint["model"]})["weight"].item() == pytest.approx(0.43)

    resumed = EmaHook(decay=0.5)
    resumed.load_state_dict(checkpoint["hooks"]["EmaHook"])
    trainer = make_trainer(hooks=[resumed], max_iter=3, lr=0.1)
    trainer.model.load_state_dict(checkpoint["model"])
    trainer.state.iteration = 2
    trainer.train()
    w3 = trainer.model.weight.item()
    assert resumed.ema.updates == 3
    assert resumed.ema.module.weight.item() == pytest.approx(0.5 * 0.64 + 0.5 * w3)


def test_the_checkpoint_key_is_the_hook_name():
    from yolact.engine.inference_weights import EMA_STATE_KEY

    assert EMA_STATE_KEY == EmaHook.__name__  # hook states are saved by class name


def test_bad_decay_is_refused():
    with pytest.raises(ValueError, match="decay"):
        EmaHook(decay=1.0)
