"""The runtime choices with mocked CUDA and CPU flags: amp "auto", channels_last "auto", cuDNN
autotuning, and local rank 0 building (downloading) the backbone first."""
import contextlib
from types import SimpleNamespace

import pytest
import torch

from yolact.config import ConfigError, load_config
from yolact.engine import performance_advice
from yolact.engine.performance_advice import cpu_precision_note
from yolact.engine.runtime import (checks_gradients, configure_cuda, cpu_backward_in_nchw, resolve_amp,
                                   resolve_channels_last, set_training_memory_format)
from yolact.engine.train import launch
from yolact.optimize.nchw_backward_conv import NCHWBackwardConv2d


@pytest.mark.parametrize("bf16, expected", [(True, "bf16"), (False, "fp16")])
def test_auto_amp_is_bf16_where_the_gpu_has_it_else_fp16(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    assert resolve_amp("auto", torch.device("cuda", 0)) == expected


AMX_CPU = frozenset({"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})


@pytest.mark.parametrize("flags, expected", [
    (AMX_CPU, "bf16"),
    (frozenset({"avx512f", "avx512_bf16"}), "off"),  # native bf16 without AMX: no faster than fp32
    (frozenset({"avx2", "fma"}), "off"),  # bf16 emulated
    (None, "off"),  # no flags to read (not Linux, or not x86)
])
def test_auto_amp_on_a_cpu_is_bf16_with_amx_only_and_explicit_modes_stay(monkeypatch, flags, expected):
    monkeypatch.setattr(performance_advice, "cpu_flags", lambda: flags)
    monkeypatch.setattr(performance_advice, "onednn_isa_cap", lambda: None)  # whatever the environment says
    assert resolve_amp("auto", torch.device("cpu")) == expected
    assert [resolve_amp(mode, torch.device("cuda")) for mode in ("off", "bf16", "fp16")] == ["off", "bf16", "fp16"]
    assert [resolve_amp(mode, torch.device("cpu")) for mode in ("off", "bf16", "fp16")] == ["off", "bf16", "fp16"]


def test_reference_recipes_train_in_fp32_and_off_parses_on_the_command_line():
    """YAML reads an unquoted off as false: ``train.amp=off`` used to be refused."""
    assert load_config("coco").train.amp == "off"
    assert load_config("yolact_plus_base").train.amp == "off"
    assert load_config("shapes").train.amp == "auto"
    assert load_config("shapes", ["train.amp=off"]).train.amp == "off"


SAID_FASTER = ("this CPU has amx_bf16: train.amp=auto (bf16 autocast here) trains about 2x faster than fp32; "
               "README \"On a CPU with AMX\"")
SAID_BF16 = ("train.amp=auto: bf16 autocast on this CPU (amx_bf16, about 2x faster than fp32; weights, loss and "
             "validation stay fp32); train.amp=off trains in fp32")


@pytest.mark.parametrize("flags, amp_setting, amp, device, expected", [
    (AMX_CPU, "off", "off", "cpu", SAID_FASTER),
    (AMX_CPU, "auto", "bf16", "cpu", SAID_BF16),
    (AMX_CPU, "bf16", "bf16", "cpu", None),  # asked for
    ({"avx512f", "avx512_bf16"}, "off", "off", "cpu", None),  # native bf16 without AMX: no faster than fp32
    ({"avx512f", "avx512_bf16"}, "auto", "off", "cpu", None),
    ({"avx2", "fma"}, "auto", "off", "cpu", None),  # bf16 emulated
    (AMX_CPU, "auto", "bf16", "cuda", None),
])
def test_a_cpu_with_amx_says_what_precision_it_trains_in(flags, amp_setting, amp, device, expected):
    assert cpu_precision_note(amp_setting, amp, torch.device(device), flags=frozenset(flags)) == expected


def test_no_precision_note_without_cpu_flags_to_read(monkeypatch):
    monkeypatch.setattr(performance_advice, "cpu_flags", lambda: None)  # not Linux, or not x86
    assert cpu_precision_note("off", "off", torch.device("cpu")) is None


@pytest.mark.parametrize("device, amp, expected", [("cpu", "bf16", True), ("cpu", "off", True),
                                                   ("cpu", "fp16", True), ("cuda", "bf16", False),
                                                   ("cuda", "fp16", False), ("cuda", "off", False)])
def test_channels_last_auto_is_on_for_a_cpu_only(device, amp, expected):
    assert resolve_channels_last("auto", torch.device(device), amp) is expected
    assert resolve_channels_last(True, torch.device(device), amp) is True
    assert resolve_channels_last(False, torch.device(device), amp) is False


@pytest.mark.parametrize("setting, device, amp, expected", [
    (True, "cpu", "off", True),      # the measured R50 case: fp32 backward of k>1 convs in NCHW
    (True, "cpu", "bf16", False),    # autocast runs the ordinary convolution anyway
    (True, "cuda", "off", False),    # cuDNN's channels_last kernels need no help
    ("auto", "cpu", "off", False),   # small.yaml: oneDNN's own channels_last backward is faster
    ("auto", "cpu", "bf16", False),
    (False, "cpu", "off", False),
])
def test_only_an_explicit_channels_last_runs_the_cpu_fp32_backward_in_nchw(setting, device, amp, expected):
    assert cpu_backward_in_nchw(setting, torch.device(device), amp) is expected


@pytest.mark.parametrize("setting, amp, expected_channels_last, expected_nchw_backward_convs", [
    ("auto", "off", True, 0),
    (True, "off", True, 2),          # the 3x3 convs only; the 1x1 keeps oneDNN's backward
    (True, "bf16", True, 0),
    (False, "off", False, 0),
])
def test_a_training_run_sets_the_memory_format_its_settings_name(setting, amp, expected_channels_last,
                                                                   expected_nchw_backward_convs):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 1),
                                torch.nn.Conv2d(8, 4, 3, padding=1))
    on = set_training_memory_format(model, setting, torch.device("cpu"), amp)
    assert on is expected_channels_last
    weights_3x3 = [weight for weight in model.parameters() if weight.dim() == 4 and weight.shape[-1] == 3]
    assert len(weights_3x3) == 2
    assert all(weight.is_contiguous(memory_format=torch.channels_last) is expected_channels_last
               for weight in weights_3x3)
    assert sum(isinstance(module, NCHWBackwardConv2d) for module in model.modules()) == expected_nchw_backward_convs


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


def test_channels_last_takes_a_bool_or_auto():
    assert load_config("coco").train.channels_last is False
    assert load_config("small").train.channels_last == "auto"
    assert load_config("small", ["train.channels_last=true"]).train.channels_last is True
    with pytest.raises(ConfigError, match="key 'train.channels_last' must be bool or 'auto', got 'sometimes'"):
        load_config("small", ["train.channels_last=sometimes"])


@pytest.mark.parametrize("device, amp, expected", [("cpu", "bf16", True), ("cpu", "off", False),
                                                   ("cpu", "fp16", False), ("cuda", "bf16", False)])
def test_gradients_are_checked_for_bf16_on_a_cpu_only(device, amp, expected):
    assert checks_gradients(torch.device(device), amp) is expected
