"""The bf16/fp16 decision from the CPU's flags (not oneDNN's probe), its warning, and the
benchmark's automatic amp modes, on CPUs with and without native low precision (mocked)."""
import pytest
import torch

from yolact.benchmarks import train_bench
from yolact.engine import performance_advice
from yolact.engine.performance_advice import (cpu_flags, cpu_has_native, cpu_trains_faster_in_bf16,
                                               log_performance_advice)
from yolact.utils.cpu_flags import capped_by_onednn, onednn_isa_cap

# an AVX-512 Xeon without AVX-512-BF16 or AMX (where oneDNN's probe says bf16 is supported)
AVX512_NO_BF16 = frozenset("fpu sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni"
                           .split())
GRANITE_RAPIDS = AVX512_NO_BF16 | {"avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16", "amx_tile"}


@pytest.fixture
def cpu_with(monkeypatch):
    """Pretend this CPU has the given flags and ATen capability."""
    def set_cpu(capability: str, flags):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
        monkeypatch.setattr(performance_advice, "cpu_flags", lambda: flags)
        monkeypatch.setattr(performance_advice, "onednn_isa_cap", lambda: None)  # whatever the env says
    return set_cpu


@pytest.mark.parametrize("flags, bf16, fp16", [
    (AVX512_NO_BF16, False, False),
    (frozenset({"avx2", "fma"}), False, False),
    (AVX512_NO_BF16 | {"avx512_bf16"}, True, False),
    (AVX512_NO_BF16 | {"amx_bf16"}, True, False),
    (AVX512_NO_BF16 | {"avx512_fp16"}, False, False),  # its fp16 conv backward is emulated
    (AVX512_NO_BF16 | {"amx_fp16"}, False, True),
    (GRANITE_RAPIDS, True, True),
])
def test_native_low_precision_comes_from_the_cpu_flags(flags, bf16, fp16):
    assert cpu_has_native("off", flags) is True
    assert cpu_has_native("bf16", flags) is bf16 and cpu_has_native("fp16", flags) is fp16


def test_an_avx512_cpu_without_bf16_flags_is_emulated_whatever_onednn_says(cpu_with, monkeypatch, yolact_log):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    cpu_with("AVX512", AVX512_NO_BF16)
    assert cpu_has_native("bf16") is False
    log_performance_advice(torch.device("cpu"), amp="bf16")
    log_performance_advice(torch.device("cuda"), amp="bf16")
    # (the yolact logger and the root logger both reach caplog: one message, possibly twice)
    warnings = list(dict.fromkeys(r.getMessage() for r in yolact_log.records if r.levelname == "WARNING"))
    assert warnings == ["bf16 autocast on this CPU (AVX512, no avx512_bf16 or amx_bf16) is emulated and much "
                        "slower than fp32; set amp to off here"]


def test_nothing_to_say_for_native_settings(cpu_with, yolact_log):
    cpu_with("AVX512", GRANITE_RAPIDS)
    log_performance_advice(torch.device("cpu"), amp="bf16")
    log_performance_advice(torch.device("cpu"), amp="fp16")
    log_performance_advice(torch.device("cpu"), amp="off")
    assert not [r for r in yolact_log.records if r.levelname == "WARNING"]


def test_without_flags_a_one_time_benchmark_decides(cpu_with, monkeypatch):
    cpu_with("DEFAULT", None)
    monkeypatch.setattr(performance_advice, "_autocast_not_slower", lambda amp: amp == "bf16")
    assert cpu_has_native("bf16") is True and cpu_has_native("fp16") is False


ALL_AVX512_AND_AMX = {"avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                      "avx512_fp16", "amx_bf16", "amx_fp16", "amx_tile"}


@pytest.mark.parametrize("cap, dropped", [
    (None, set()), ("DEFAULT", set()), ("ALL", set()), ("NOT_AN_ISA", set()),
    ("AVX512_CORE_AMX_FP16", set()), ("AVX10_1_512_AMX_FP16", set()),
    ("AVX512_CORE_AMX", {"amx_fp16"}), ("AVX10_1_512_AMX", {"amx_fp16"}),
    ("AVX512_CORE_FP16", {"amx_bf16", "amx_fp16", "amx_tile"}),
    ("AVX512_CORE_BF16", {"avx512_fp16", "amx_bf16", "amx_fp16", "amx_tile"}),
    ("AVX512_CORE", {"avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16", "amx_tile"}),
    ("AVX2", ALL_AVX512_AND_AMX),
    ("AVX", ALL_AVX512_AND_AMX | {"avx2", "fma"}),
])
def test_flags_above_onednns_isa_cap_are_dropped(cap, dropped):
    assert capped_by_onednn(GRANITE_RAPIDS, cap) == GRANITE_RAPIDS - dropped
    assert capped_by_onednn(None, cap) is None


def test_an_amx_cpu_with_onednn_capped_below_amx_trains_as_the_capped_cpu(monkeypatch):
    """The env is read at each decision (no convolution runs here, so oneDNN's own cap is untouched)."""
    monkeypatch.setattr(performance_advice, "cpu_flags", lambda: GRANITE_RAPIDS)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "default")
    assert cpu_has_native("bf16") and cpu_trains_faster_in_bf16()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")  # bf16 emulated
    assert onednn_isa_cap() == "AVX2"
    assert not cpu_has_native("bf16") and not cpu_trains_faster_in_bf16()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")  # native bf16 without AMX: no faster
    assert cpu_has_native("bf16") and not cpu_trains_faster_in_bf16()
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX2")  # the older name
    assert not cpu_trains_faster_in_bf16()


def test_cpu_flags_reads_the_flags_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512_bf16\n\n"
                       "processor\t: 1\n")
    assert cpu_flags.__wrapped__(str(cpuinfo)) == frozenset({"fpu", "avx2", "avx512_bf16"})
    assert cpu_flags.__wrapped__(str(tmp_path / "absent")) is None
    (tmp_path / "arm").write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")
    assert cpu_flags.__wrapped__(str(tmp_path / "arm")) is None


@pytest.mark.parametrize("flags, expected", [(AVX512_NO_BF16, ["off"]), (GRANITE_RAPIDS, ["off", "bf16"])])
def test_benchmark_auto_amp_modes_on_cpu(cpu_with, flags, expected):
    cpu_with("AVX512", flags)
    assert train_bench._amp_modes(torch.device("cpu"), "auto") == expected
    assert train_bench._amp_modes(torch.device("cpu"), "off,bf16") == ["off", "bf16"]
    assert train_bench._amp_modes(torch.device("cuda"), "auto") == ["off", "bf16", "fp16"]
