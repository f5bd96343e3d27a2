"""Which weights of a checkpoint to predict with: the weight average when training kept one.

Shared by the training wing (``engine/train/ema.py`` saves the average) and the evaluation
wing (``engine/evaluation/model_loading.py`` loads it), which must not import each other.
"""
from typing import Any, Mapping

import torch

__all__ = ["EMA_STATE_KEY", "inference_state_dict"]

EMA_STATE_KEY = "EmaHook"  # the EMA hook's key in checkpoint["hooks"]: its class name


def inference_state_dict(checkpoint: Mapping[str, Any]) -> Mapping[str, torch.Tensor]:
    """``checkpoint["hooks"]["EmaHook"]["weights"]`` when present, else ``checkpoint["model"]``."""
    average = checkpoint.get("hooks", {}).get(EMA_STATE_KEY, {}).get("weights")
    return average if average else checkpoint["model"]
