"""The torch generators of one process (rank): its CPU generator and its own CUDA device's.

Each rank of a multi-GPU run draws from its own generators, so each rank saves and restores its
own; never ``torch.cuda.get_rng_state_all()``, which is every visible device's state as seen by
one process and cannot be restored where fewer devices are visible.
"""
from typing import Dict, List, Optional

import torch

__all__ = ["capture_rank_rng_state", "restore_rank_rng_state"]


def capture_rank_rng_state(device: torch.device) -> Dict[str, torch.Tensor]:
    """``{"cpu": ByteTensor}`` plus ``"cuda"``: the generator of ``device`` when it is a CUDA device.

    Args:
        device: this rank's training device (``cuda`` without index means the current device).
    """
    device = torch.device(device)
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rank_rng_state(state: Optional[Dict[str, torch.Tensor]], device: torch.device) -> List[str]:
    """Inverse of :func:`capture_rank_rng_state` on this rank's ``device``.

    Returns:
        One note per generator that could not be restored (the state was saved on another kind
        of device, or holds no state), for the caller to log; empty when all were restored.
    """
    device = torch.device(device)
    if not state:
        return ["no RNG state saved for this rank: the generators keep their seed"]
    torch.set_rng_state(state["cpu"])
    if device.type != "cuda":
        return []
    if "cuda" not in state:
        return [f"no CUDA RNG state saved for this rank (saved on the CPU): {device} keeps its seed"]
    torch.cuda.set_rng_state(state["cuda"], device)
    return []
