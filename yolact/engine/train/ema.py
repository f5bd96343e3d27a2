"""An exponential moving average of the weights, as a training hook.

The averaged copy is what validation, ``best.pth`` and inference use; the raw weights stay the
checkpoint's ``model`` so that a resumed run continues exactly. The average is saved with the
hook states (``checkpoint["hooks"]["EmaHook"]``) and
:func:`~yolact.engine.inference_weights.inference_state_dict` picks it.
"""
import copy
import math
from typing import Any, Dict, Mapping, Optional

import torch
from torch import nn

from yolact.engine.inference_weights import EMA_STATE_KEY, inference_state_dict
from yolact.engine.train.hooks import HookBase, unwrap

__all__ = ["ModelEma", "EmaHook", "inference_state_dict", "EMA_STATE_KEY"]



class ModelEma:
    """``ema = d * ema + (1 - d) * weights`` after each update, ``d = decay * (1 - exp(-updates / tau))``.

    The ramp (``tau`` > 0, YOLOv5's rule) keeps the early average from lagging far behind the
    weights of a short run; ``tau`` 0 uses ``decay`` from the first update. Every floating-point
    entry of the state dict is averaged (BatchNorm running statistics included); integer entries
    (``num_batches_tracked``) are copied.
    """

    def __init__(self, model: nn.Module, *, decay: float, tau: float = 0.0, updates: int = 0):
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)
        self.decay, self.tau, self.updates = decay, tau, updates

    def decay_at(self, updates: int) -> float:
        """The ``d`` of the ``updates``-th update (1-based)."""
        if self.tau <= 0:
            return self.decay
        return self.decay * (1.0 - math.exp(-updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay_at(self.updates)
        source = model.state_dict()
        for name, value in self.module.state_dict().items():
            new = source[name].detach()
            if value.dtype.is_floating_point:
                value.mul_(d).add_(new.to(value.dtype), alpha=1.0 - d)
            else:
                value.copy_(new)

    def state_dict(self) -> Dict[str, Any]:
        return {"updates": self.updates, "weights": self.module.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.updates = int(state["updates"])
        self.module.load_state_dict(state["weights"])


class EmaHook(HookBase):
    """Keeps a :class:`ModelEma` of the trained model; updates it after every step taken.

    Place it before the validation hook, whose ``model_source`` is :meth:`averaged_model`.
    """

    def __init__(self, *, decay: float, tau: float = 0.0):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay, self.tau = decay, tau
        self.ema: Optional[ModelEma] = None
        self._restored: Optional[Mapping[str, Any]] = None

    def before_train(self, trainer) -> None:
        self.ema = ModelEma(unwrap(trainer.model), decay=self.decay, tau=self.tau)
        if self._restored is not None:
            self.ema.load_state_dict(self._restored)
            self._restored = None

    def after_step(self, trainer) -> None:
        self.ema.update(unwrap(trainer.model))

    def averaged_model(self, trainer) -> nn.Module:
        """The model validation evaluates: the average (the raw model before training starts)."""
        return self.ema.module if self.ema is not None else unwrap(trainer.model)

    def state_dict(self) -> Dict[str, Any]:
        return self.ema.state_dict() if self.ema is not None else {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if state:
            self._restored = state

