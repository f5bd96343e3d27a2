"""The device of each torchrun process and the process-group setup (issue 13, defects 1 and 2),
with mocked CUDA: no GPU and no process group needed."""
import pytest
import torch
import torch.distributed as dist

from yolact.errors import YolactError
from yolact.utils import distributed
from yolact.utils.distributed import init_distributed, resolve_device


def _resolve(name, world_size=1, local_rank=0, cuda_device_count=0):
    return resolve_device(name, world_size=world_size, local_rank=local_rank, cuda_device_count=cuda_device_count)


def test_cuda_means_this_process_gpu_under_torchrun():
    assert _resolve("cuda", world_size=4, local_rank=2, cuda_device_count=4) == torch.device("cuda", 2)
    assert _resolve("auto", world_size=4, local_rank=3, cuda_device_count=4) == torch.device("cuda", 3)
    assert _resolve("cuda", cuda_device_count=2) == torch.device("cuda")  # one process: the current GPU
    assert _resolve("cuda:1", cuda_device_count=2) == torch.device("cuda", 1)


def test_cpu_and_auto_without_cuda():
    assert _resolve("cpu", world_size=2, local_rank=1, cuda_device_count=8) == torch.device("cpu")
    assert _resolve("auto", world_size=2, local_rank=1) == torch.device("cpu")


@pytest.mark.parametrize("name, world_size, local_rank, count, message", [
    ("cuda:1", 2, 0, 2, "train.device=cuda:1 puts all 2 torchrun processes on one GPU; use train.device=cuda"),
    ("cuda", 4, 3, 2, "train.device=cuda: LOCAL_RANK=3 but only 2 CUDA device(s) are visible"),
    ("cuda:2", 1, 0, 2, "train.device=cuda:2: cuda:2 but only 2 CUDA device(s) are visible"),
    ("cuda", 1, 0, 0, "train.device=cuda: CUDA is not available on this machine"),
])
def test_wrong_cuda_devices_are_one_line_errors(name, world_size, local_rank, count, message):
    with pytest.raises(YolactError) as error:
        _resolve(name, world_size=world_size, local_rank=local_rank, cuda_device_count=count)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def _torchrun_env(monkeypatch, calls):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda **kwargs: calls.append(("init", kwargs)))
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set_device", device)))


def test_nccl_rank_sets_its_device_before_joining_the_group(monkeypatch):
    calls = []
    _torchrun_env(monkeypatch, calls)
    info = init_distributed("cuda")
    assert (info.rank, info.world_size, info.local_rank) == (1, 2, 1)
    device = torch.device("cuda", 1)
    assert calls == [("set_device", device), ("init", {"backend": "nccl", "device_id": device})]


def test_gloo_rank_leaves_cuda_alone(monkeypatch):
    calls = []
    _torchrun_env(monkeypatch, calls)
    assert init_distributed("cpu").distributed
    assert calls == [("init", {"backend": "gloo"})]


def test_single_process_joins_nothing(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda **kwargs: pytest.fail("joined a group"))
    assert init_distributed("cuda") == distributed.DistInfo()
