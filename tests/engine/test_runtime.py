"""The runtime choices of issue 13 with mocked CUDA: amp "auto", cuDNN autotuning, and local
rank 0 building (downloading) the backbone first."""
import contextlib
from types import SimpleNamespace

import pytest
import torch

from yolact.config import load_config
from yolact.engine.runtime import configure_cuda, resolve_amp
from yolact.engine.train import launch


@pytest.mark.parametrize("bf16, expected", [(True, "bf16"), (False, "fp16")])
def test_auto_amp_is_bf16_where_the_gpu_has_it_else_fp16(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    assert resolve_amp("auto", torch.device("cuda", 0)) == expected


def test_auto_amp_is_off_on_the_cpu_and_explicit_modes_stay():
    assert resolve_amp("auto", torch.device("cpu")) == "off"
    assert [resolve_amp(mode, torch.device("cuda")) for mode in ("off", "bf16", "fp16")] == ["off", "bf16", "fp16"]


def test_reference_recipes_train_in_fp32_and_off_parses_on_the_command_line():
    """YAML reads an unquoted off as false: ``train.amp=off`` used to be refused."""
    assert load_config("coco").train.amp == "off"
    assert load_config("yolact_plus_base").train.amp == "off"
    assert load_config("shapes").train.amp == "auto"
    assert load_config("shapes", ["train.amp=off"]).train.amp == "off"


def test_cudnn_autotunes_on_cuda_only(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    configure_cuda(torch.device("cpu"))
    assert torch.backends.cudnn.benchmark is False
    configure_cuda(torch.device("cuda", 1))
    assert torch.backends.cudnn.benchmark is True


@pytest.mark.parametrize("local_rank, expected", [(0, ["build", "barrier"]), (1, ["barrier", "build"])])
def test_local_rank_zero_builds_the_model_before_the_others(monkeypatch, local_rank, expected):
    calls = []
    monkeypatch.setattr(launch, "build_model", lambda config, pretrained: calls.append("build") or "model")
    monkeypatch.setattr(launch, "barrier", lambda: calls.append("barrier"))
    info = SimpleNamespace(local_rank=local_rank)
    assert launch.build_model_local_rank_first(None, "config", info) == "model"
    assert calls == expected
