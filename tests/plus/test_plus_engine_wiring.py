"""The engine hands YOLACT++'s mask-IoU head to the criterion (training step) and to the
post-processor (inference), from the bare model or through a wrapper; YOLACT gets no head."""
import itertools

import numpy as np
import torch
from torch import nn

from yolact.engine.evaluation.predictor import predict_image
from yolact.engine.train.trainer import Trainer


class StubModel(nn.Module):
    """outputs {"value": w * images.sum()}; a ``maskiou_head`` (y = h * x) when ``plus``."""

    def __init__(self, plus: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1))
        self.maskiou_head = nn.Linear(1, 1, bias=False) if plus else None

    def forward(self, images):
        return {"value": self.weight * images.sum()}


class HeadCriterion(nn.Module):
    """loss_value = value, plus loss_head = head(value) when given a head; records the heads."""

    def __init__(self):
        super().__init__()
        self.loss_weights = {"loss_value": 1.0}
        self.heads = []

    def forward(self, outputs, targets, maskiou_head=None):
        self.heads.append(maskiou_head)
        losses = {"loss_value": outputs["value"].sum()}
        if maskiou_head is not None:
            losses["loss_head"] = maskiou_head(outputs["value"].reshape(1, 1)).sum()
        return losses


def _one_step(model):
    criterion = HeadCriterion()
    batches = itertools.repeat((torch.ones(1, 1), [{"image_id": 1}]))
    trainer = Trainer(model=model, criterion=criterion, optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
                      batches=batches, device=torch.device("cpu"), lr_at=lambda iteration: 0.0, max_iter=1)
    assert trainer.run_step()
    return criterion.heads, trainer.last_scalars


def test_the_training_step_passes_the_head_of_a_plus_model():
    plus = StubModel(plus=True)
    heads, scalars = _one_step(nn.DataParallel(plus))  # the bare model's head, through the wrapper
    assert heads == [plus.maskiou_head] and "loss_head" in scalars
    assert plus.maskiou_head.weight.grad is not None  # the head trains in the step's backward
    assert _one_step(StubModel(plus=False))[0] == [None]  # YOLACT: called without a head


def test_inference_passes_the_head_to_the_post_processor():
    model = StubModel(plus=True)
    calls = []

    def postprocessor(outputs, image_sizes, mask_format="bool", *, maskiou_head):
        calls.append(maskiou_head)
        return [{"boxes": torch.tensor([[1.0, 1.0, 4.0, 4.0]]), "labels": torch.tensor([0]),
                 "scores": torch.tensor([0.9]), "mask_scores": torch.tensor([0.25])}]

    found = predict_image(model, postprocessor, np.zeros((6, 8, 3), np.uint8), input_size=8,
                          device=torch.device("cpu"), mask_format="none")
    assert calls == [model.maskiou_head]
    assert found["mask_scores"].dtype == np.float32 and found["mask_scores"].tolist() == [0.25]
