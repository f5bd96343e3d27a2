"""Warnings for slow settings, and the benchmark's automatic amp modes, on CPUs with and without bf16."""
import pytest
import torch

from yolact.benchmarks import train_bench
from yolact.engine import performance_advice
from yolact.engine.performance_advice import cpu_has_native, log_performance_advice


@pytest.fixture
def cpu_capability(monkeypatch):
    def set_cpu(capability: str, native: bool):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
        monkeypatch.setattr(performance_advice, "cpu_has_native", lambda amp: amp == "off" or native)
        monkeypatch.setattr(train_bench, "cpu_has_native", lambda amp: amp == "off" or native)
    return set_cpu


def test_off_is_always_native_and_the_probe_answers_a_bool():
    assert cpu_has_native("off") is True
    assert cpu_has_native("bf16") == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def test_emulated_bf16_warns_on_an_avx2_cpu(cpu_capability, yolact_log):
    cpu_capability("AVX2", native=False)
    log_performance_advice(torch.device("cpu"), amp="bf16")
    log_performance_advice(torch.device("cuda"), amp="bf16")
    warnings = list(dict.fromkeys(r.getMessage() for r in yolact_log.records if r.levelname == "WARNING"))
    assert warnings == ["bf16 autocast on this CPU (AVX2, no native bf16 kernels) is emulated and much slower "
                        "than fp32; set amp to off here"]


def test_nothing_to_say_for_native_settings(cpu_capability, yolact_log):
    cpu_capability("AVX512", native=True)
    log_performance_advice(torch.device("cpu"), amp="bf16")
    log_performance_advice(torch.device("cpu"), amp="off")
    assert not [r for r in yolact_log.records if r.levelname == "WARNING"]


@pytest.mark.parametrize("native, expected", [(False, ["off"]), (True, ["off", "bf16"])])
def test_benchmark_auto_amp_modes_on_cpu(cpu_capability, native, expected):
    cpu_capability("AVX2", native=native)
    assert train_bench._amp_modes(torch.device("cpu"), "auto") == expected
    assert train_bench._amp_modes(torch.device("cpu"), "off,bf16") == ["off", "bf16"]
    assert train_bench._amp_modes(torch.device("cuda"), "auto") == ["off", "bf16", "fp16"]
