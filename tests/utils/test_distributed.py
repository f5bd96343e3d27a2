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
    assert calls == [("set_device", device), ("init", {"backend": "nccl", "device_id": device,
                                                        "timeout": distributed.PROCESS_GROUP_TIMEOUT})]


def test_gloo_rank_leaves_cuda_alone(monkeypatch):
    calls = []
    _torchrun_env(monkeypatch, calls)
    assert init_distributed("cpu").distributed
    assert calls == [("init", {"backend": "gloo", "timeout": distributed.PROCESS_GROUP_TIMEOUT})]


def test_single_process_joins_nothing(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda **kwargs: pytest.fail("joined a group"))
    assert init_distributed("cuda") == distributed.DistInfo()


def test_select_device_puts_each_torchrun_process_on_its_own_gpu(monkeypatch):
    """Defect 2: ``train.device=cuda`` under torchrun used to be the current device on every rank."""
    from yolact.engine.runtime import select_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert select_device("cuda", world_size=4, local_rank=2) == torch.device("cuda", 2)
    assert select_device("auto", world_size=4, local_rank=3) == torch.device("cuda", 3)
    assert select_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(YolactError, match="^--device=cuda:1 puts all 2 torchrun processes on one GPU"):
        select_device("cuda:1", world_size=2, local_rank=0, key="--device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto", world_size=2, local_rank=1) == torch.device("cpu")
    with pytest.raises(YolactError, match="^--device=cuda: CUDA is not available"):
        select_device("cuda", key="--device")


def test_launch_resolves_the_device_before_joining_the_group(monkeypatch):
    """Under torchrun with 2 mocked GPUs, rank 1 trains on cuda:1 and joins NCCL with that device."""
    from yolact.config import load_config
    from yolact.engine.train import launch

    calls = []
    _torchrun_env(monkeypatch, calls)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(launch, "_train", lambda config, *args: calls.append(("train", args[-2])) or 0)
    monkeypatch.setattr(launch, "cleanup_distributed", lambda: None)
    assert launch.launch_training(load_config("shapes", ["train.device=cuda"]), config_name="shapes") == 0
    assert calls[0] == ("set_device", torch.device("cuda", 1))
    assert calls[-1] == ("train", torch.device("cuda", 1))


def test_launch_refuses_one_gpu_index_for_every_process(monkeypatch):
    from yolact.config import load_config
    from yolact.engine.train import launch

    calls = []
    _torchrun_env(monkeypatch, calls)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(YolactError, match="^train.device=cuda:0 puts all 2 torchrun processes on one GPU"):
        launch.launch_training(load_config("shapes", ["train.device=cuda:0"]), config_name="shapes")
    assert calls == []  # refused before joining any group
