"""Checkpoints: atomic writes, safe loads (``weights_only=True``), RNG state capture.

A training checkpoint is a dict of plain containers and tensors only, so that
``torch.load(path, weights_only=True)`` reads it without executing any pickle code:
``format``, ``model``, ``optimizer``, ``scaler``, ``iteration``, ``rng``, ``config``,
``class_names``, ``category_ids`` and ``metrics``. ``rng`` is a list with each rank's own
generators (:func:`gather_rng_states`); a resume restores each rank's own.
"""
import pickle
import random
import re
import warnings
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import torch

from yolact.errors import YolactError
from yolact.utils.atomic import atomic_write
from yolact.utils.distributed import all_gather_objects
from yolact.utils.rng_state import capture_rank_rng_state, restore_rank_rng_state

__all__ = ["CHECKPOINT_FORMAT", "save_atomic", "load_checkpoint", "capture_rng_state", "gather_rng_states",
           "restore_rng_state"]

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


def capture_rng_state(device: torch.device = torch.device("cpu")) -> Dict[str, Any]:
    """This process's generators, as tensors and plain containers: ``torch`` (CPU), ``numpy``,
    ``python`` and, on a CUDA ``device``, ``cuda`` (that device's generator only)."""
    numpy_state = np.random.get_state()
    torch_state = capture_rank_rng_state(device)
    state = {
        "torch": torch_state["cpu"],
        "numpy": {"keys": torch.from_numpy(numpy_state[1].astype(np.int64)), "pos": int(numpy_state[2]),
                  "has_gauss": int(numpy_state[3]), "cached_gaussian": float(numpy_state[4])},
        "python": _python_state_to_plain(random.getstate()),
    }
    if "cuda" in torch_state:
        state["cuda"] = torch_state["cuda"]
    return state


def gather_rng_states(device: torch.device = torch.device("cpu")) -> List[Dict[str, Any]]:
    """``[state of rank 0, state of rank 1, ...]`` (:func:`capture_rng_state` of each rank).

    A collective under torchrun: every rank calls it at the same point; one process gives a
    list of one.
    """
    return all_gather_objects(capture_rng_state(device))


def restore_rng_state(saved, device: torch.device = torch.device("cpu"), *, rank: int = 0,
                      world_size: int = 1) -> List[str]:
    """Restore this rank's own generators from a checkpoint's ``rng``.

    Args:
        saved: :func:`gather_rng_states`' list (one state per rank), one state dict (a
            checkpoint of the format before per-rank states: rank 0's generators, with every
            visible GPU's state under ``cuda``), or None.
        device, rank, world_size: this process's device and place in the run.
    Returns:
        Notes for the caller to log (a different number of processes, generators that keep
        their seed); empty when this rank got its own generators back.
    """
    if not saved:
        return ["the checkpoint holds no RNG state: the generators keep their seed"]
    if isinstance(saved, dict):  # old format: one process's state
        saved = [_from_all_devices(saved, torch.device(device))]
    notes = []
    if len(saved) != world_size:
        notes.append(f"the checkpoint was saved by {len(saved)} process(es), this run has {world_size}: random draws "
                     f"outside the data pipeline differ from an uninterrupted run")
    if rank >= len(saved):
        return notes + [f"no RNG state saved for rank {rank}: its generators keep their seed"]
    state = saved[rank]
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch_state = {"cpu": state["torch"], **({"cuda": state["cuda"]} if "cuda" in state else {})}
    return notes + restore_rank_rng_state(torch_state, device)


def _from_all_devices(state: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
    """An old checkpoint's state with ``cuda`` (every visible GPU's) narrowed to ``device``'s."""
    state = dict(state)
    all_devices = state.pop("cuda", None)
    if device.type == "cuda" and all_devices is not None:
        # a single process on plain ``cuda`` runs on the default device 0 (this program never
        # changes it; CUDA_VISIBLE_DEVICES picks the GPU); torchrun's ranks have an index
        index = device.index if device.index is not None else 0
        if index < len(all_devices):
            state["cuda"] = all_devices[index]
    return state


def _python_state_to_plain(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]
