"""torch.distributed plumbing for runs launched by ``torchrun`` (NCCL on GPUs, gloo on CPU)."""
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, List

import torch
import torch.distributed as dist

from yolact.errors import YolactError

__all__ = ["DistInfo", "PROCESS_GROUP_TIMEOUT", "process_env", "resolve_device", "init_distributed",
           "cleanup_distributed", "is_distributed", "barrier", "all_reduce_mean", "all_gather_objects",
           "broadcast_object"]

# Collectives wait this long for a late rank before failing: rank 0 alone runs COCOeval on the
# gathered detections (minutes on COCO val) while the others wait for its metrics.
PROCESS_GROUP_TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def process_env() -> DistInfo:
    """This process's place in the run from torchrun's environment (RANK, WORLD_SIZE,
    LOCAL_RANK), without joining any group; a single process without them."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    return DistInfo(rank=int(os.environ["RANK"]), world_size=world_size,
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(name: str, *, world_size: int, local_rank: int, cuda_device_count: int,
                   key: str = "train.device") -> torch.device:
    """The device of this process for the configured device ``name`` (pure: no CUDA query).

    - ``auto``: ``cuda:LOCAL_RANK`` when CUDA devices are visible, else the CPU;
    - ``cuda``: ``cuda:LOCAL_RANK`` under torchrun (world size > 1), else the current device;
    - ``cuda:N``: that device in a single process; an error under torchrun, where it would put
      every process on the same GPU;
    - anything else (``cpu``, ``mps``...): as given.

    Args:
        name: the configured device string.
        world_size, local_rank: this process's place in the run (torchrun's WORLD_SIZE, LOCAL_RANK).
        cuda_device_count: ``torch.cuda.device_count()`` (0 without CUDA).
        key: the config key or flag named in error messages.
    Raises:
        YolactError (one line naming ``key``): CUDA asked for but absent, ``cuda:N`` under
        torchrun, or a device index (N or LOCAL_RANK) that is not visible.
    """
    if name == "auto":
        name = "cuda" if cuda_device_count > 0 else "cpu"
    device = torch.device(name)
    if device.type != "cuda":
        return device
    if cuda_device_count == 0:
        raise YolactError(f"{key}={name}: CUDA is not available on this machine")
    if world_size > 1 and device.index is not None:
        raise YolactError(f"{key}={name} puts all {world_size} torchrun processes on one GPU; use {key}=cuda "
                          f"(each process takes cuda:LOCAL_RANK) and choose GPUs with CUDA_VISIBLE_DEVICES")
    index = device.index if device.index is not None else (local_rank if world_size > 1 else None)
    if index is not None and index >= cuda_device_count:
        reason = (f"LOCAL_RANK={index}" if device.index is None else f"cuda:{index}")
        raise YolactError(f"{key}={name}: {reason} but only {cuda_device_count} CUDA device(s) are visible "
                          f"(at most {cuda_device_count} processes per node)")
    return torch.device("cuda", index) if index is not None else device


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group described by torchrun's environment (a no-op without it).

    With ``device_type == "cuda"`` (NCCL) the process first makes ``cuda:LOCAL_RANK`` its current
    device and binds the group to it (``device_id``), so that its CUDA context, pinned-memory
    thread and collectives use its own GPU rather than GPU 0.
    """
    info = process_env()
    if not info.distributed:
        return info
    if not dist.is_initialized():
        if device_type == "cuda":
            device = torch.device("cuda", info.local_rank)
            torch.cuda.set_device(device)
            dist.init_process_group(backend="nccl", device_id=device, timeout=PROCESS_GROUP_TIMEOUT)
        else:
            dist.init_process_group(backend="gloo", timeout=PROCESS_GROUP_TIMEOUT)
    return info


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """Whether this process is one of several in an initialised process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over ranks (the tensor itself when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    value = value.clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


def all_gather_objects(value: Any) -> List[Any]:
    """``[value of rank 0, value of rank 1, ...]`` on every rank (``[value]`` when not distributed).

    ``value`` is pickled: keep its tensors on the CPU.
    """
    if not is_distributed():
        return [value]
    gathered: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def broadcast_object(value: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``value`` on every rank (``value`` itself when not distributed)."""
    if not is_distributed():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]
