"""Count, on the CPU, the operations that would make the host wait for the GPU on CUDA.

A CPU run never waits for a device, but the operations that force a host-device
synchronisation on CUDA are the same ones on every device, so they can be counted anywhere:

- ``aten._local_scalar_dense``: ``.item()``, ``bool()``, ``int()``, an index that is a 0-dim tensor;
- ops whose output size depends on the data: ``nonzero``, ``masked_select``, ``unique``,
  ``repeat_interleave`` without ``output_size``, indexing (``index``, ``index_put_``) with a
  boolean mask;
- ``aten.equal`` (its answer is a Python bool);
- host-built tensors that a CUDA run must copy to the device: ``torch.tensor``/``as_tensor`` of
  Python data (``aten.lift_fresh``, not 0-dim) and random permutations drawn on the CPU
  generator (each counted, though a loss may copy several of them at once);
- device-to-host copies a CPU run cannot see in the dispatcher: ``.tolist()``, ``.numpy()``,
  ``.cpu()`` (seen one level up, as torch functions).

Usage::

    with SyncCounter() as counter:
        loss = criterion(outputs, targets); loss.backward()
    assert counter.count <= 5, counter.summary()
"""
from collections import Counter
from typing import Dict

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["SyncCounter"]

aten = torch.ops.aten

_ALWAYS_SYNC = {
    aten._local_scalar_dense.default,
    aten.nonzero.default,
    aten.masked_select.default,
    aten.equal.default,
    aten._unique.default,
    aten._unique2.default,
    aten.unique_dim.default,
    aten.unique_consecutive.default,
}
_INDEXING = {
    aten.index.Tensor,
    aten.index_put.default,
    aten.index_put_.default,
    aten._index_put_impl_.default,
}
_REPEAT_INTERLEAVE = {aten.repeat_interleave.Tensor, aten.repeat_interleave.self_Tensor}
_HOST_COPY_METHODS = {"tolist", "numpy", "cpu"}


def _has_bool_index(args) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(index is not None and index.dtype in (torch.bool, torch.uint8) for index in indices)


def _forces_sync(func, args, kwargs) -> bool:
    if func in _ALWAYS_SYNC:
        return True
    if func is aten.lift_fresh.default:
        # A 0-dim one is a Python number wrapped by ``t[i] = v``: filled on the device, not copied.
        return args[0].dim() > 0
    if func in _INDEXING:
        return _has_bool_index(args)
    if func in _REPEAT_INTERLEAVE:
        return kwargs.get("output_size") is None
    if func in (aten.randperm.default, aten.randperm.generator):
        device = kwargs.get("device")
        return device is None or torch.device(device).type == "cpu"
    return False


class _DispatchCounter(TorchDispatchMode):
    def __init__(self, counts: Counter):
        super().__init__()
        self.counts = counts

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _forces_sync(func, args, kwargs):
            self.counts[str(func)] += 1
        return func(*args, **kwargs)


class _HostCopyCounter(TorchFunctionMode):
    def __init__(self, counts: Counter):
        super().__init__()
        self.counts = counts

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in _HOST_COPY_METHODS and args and isinstance(args[0], torch.Tensor):
            self.counts[f"Tensor.{name}"] += 1
        return func(*args, **(kwargs or {}))


class SyncCounter:
    """Context manager: ``count`` is the number of sync-forcing operations run inside it.

    The backward pass run inside it is counted too (autograd carries the modes into it).
    """

    def __init__(self):
        self.counts: Counter = Counter()
        self._modes = (_HostCopyCounter(self.counts), _DispatchCounter(self.counts))

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> Dict[str, int]:
        return dict(self.counts)

    def __enter__(self) -> "SyncCounter":
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc_info)
