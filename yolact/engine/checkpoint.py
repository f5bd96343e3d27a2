"""Checkpoints: atomic writes, safe loads (``weights_only=True``), RNG state capture.

A training checkpoint is a dict of plain containers and tensors only, so that
``torch.load(path, weights_only=True)`` reads it without executing any pickle code:
``format``, ``model``, ``optimizer``, ``scaler``, ``iteration``, ``rng``, ``config``,
``class_names``, ``category_ids`` and ``metrics``.
"""
import pickle
import random
import re
import warnings
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch

from yolact.errors import YolactError
from yolact.utils.atomic import atomic_write

__all__ = ["CHECKPOINT_FORMAT", "save_atomic", "load_checkpoint", "capture_rng_state", "restore_rng_state"]

CHECKPOINT_FORMAT = "yolact-checkpoint-v1"


def save_atomic(payload: Dict[str, Any], path: Path) -> Path:
    """``torch.save`` through :func:`~yolact.utils.atomic.atomic_write`: ``path`` is either the
    old file or the new one, whatever happens during the write."""
    return atomic_write(path, lambda handle: torch.save(payload, handle))


def load_checkpoint(path) -> Dict[str, Any]:
    """Load a checkpoint on the CPU with ``weights_only=True``.

    Returns our training checkpoint dict, or a bare state_dict (reference checkpoints) wrapped
    as ``{"model": state_dict}``. A missing, truncated or unsafe file raises YolactError.
    """
    path = Path(path)
    if not path.is_file():
        raise YolactError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4...": noise before our one line
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise YolactError(f"{path}: refused to load, not a plain-tensor checkpoint "
                          f"({_unpickler_reason(str(error))})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise YolactError(f"{path}: unreadable checkpoint ({str(error).splitlines()[0][:160]})") from None
    if not isinstance(content, dict):
        raise YolactError(f"{path}: not a checkpoint (a {type(content).__name__})")
    if content.get("format") == CHECKPOINT_FORMAT:
        return content
    if content and all(isinstance(value, torch.Tensor) for value in content.values()):
        return {"model": content}
    raise YolactError(f"{path}: not a YOLACT checkpoint (no model state found)")


def _unpickler_reason(message: str) -> str:
    """What torch's weights-only refusal says was refused, without its advice, in whole words."""
    paragraphs = [part.strip() for part in re.split(r"\n\s*\n", message) if part.strip()]
    advice = ("Weights only load failed", "Check the documentation")
    kept = [part for part in paragraphs if not part.startswith(advice)]
    reason = " ".join(" ".join(kept or paragraphs[:1]).split()) or "unsafe pickle"
    if len(reason) > 160:
        reason = reason[:160].rsplit(" ", 1)[0] + " ..."
    return reason


def capture_rng_state() -> Dict[str, Any]:
    """Every RNG the training step draws from, as tensors and plain containers."""
    numpy_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(numpy_state[1].astype(np.int64)), "pos": int(numpy_state[2]),
                  "has_gauss": int(numpy_state[3]), "cached_gaussian": float(numpy_state[4])},
        "python": _python_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Optional[Dict[str, Any]]) -> None:
    """Inverse of :func:`capture_rng_state` (missing parts are left alone)."""
    if not state:
        return
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_plain(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]
