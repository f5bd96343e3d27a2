"""The sync counter sees each kind of operation that waits for the device on CUDA, and nothing else."""
import torch

from tests.sync_counter import SyncCounter


def test_counts_each_sync_and_ignores_device_side_work():
    values = torch.arange(6.0)
    with SyncCounter() as counter:
        values[0].item()  # _local_scalar_dense
        bool(values[1] > 0)  # _local_scalar_dense
        values[values > 2]  # boolean-mask index
        values.nonzero()
        values.tolist()
        torch.tensor([1.0, 2.0])  # host-built
        torch.repeat_interleave(torch.arange(2), torch.arange(1, 3))  # output size unknown
        torch.randperm(4)  # drawn on the CPU
    assert counter.summary() == {
        "aten._local_scalar_dense.default": 2, "aten.index.Tensor": 1, "aten.nonzero.default": 1,
        "Tensor.tolist": 1, "aten.lift_fresh.default": 1, "aten.repeat_interleave.Tensor": 1,
        "aten.randperm.default": 1,
    }
    with SyncCounter() as counter:
        values[torch.tensor([0, 2])]  # long index: no sync (the index tensor itself is host-built)
        torch.where(values > 2, values, 0.0).sum()
        torch.repeat_interleave(torch.arange(2), torch.arange(1, 3), output_size=3)
        values[1] = 5.0  # a wrapped Python number: filled on the device
        torch.randperm(4, device="meta")
    assert counter.summary() == {"aten.lift_fresh.default": 1}
