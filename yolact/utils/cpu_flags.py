"""The CPU's feature flags, read once: the speed defaults of training and inference depend on them.

oneDNN, which runs the convolutions, can be told to use fewer of them (``ONEDNN_MAX_CPU_ISA``,
as the test suite's kernel passes do to run an AVX2 machine's kernels on a newer CPU):
:func:`capped_by_onednn` drops the flags above that cap, so that a default made from the flags
(bf16 on a CPU with AMX) is the one of the CPU the kernels behave as.
"""
import functools
import os
from pathlib import Path
from typing import FrozenSet, Optional

__all__ = ["cpu_flags", "onednn_isa_cap", "capped_by_onednn"]

# oneDNN's ISA names and values (dnnl_cpu_isa_t): each value's bits include those of the sets below it
ONEDNN_ISA_VALUES = {"SSE41": 0x1, "AVX": 0x3, "AVX2": 0x7, "AVX2_VNNI": 0xF, "AVX2_VNNI_2": 0x1F,
                     "AVX512_CORE": 0x27, "AVX512_CORE_VNNI": 0x67, "AVX512_CORE_BF16": 0xE7,
                     "AVX10_1_512": 0x1EF, "AVX512_CORE_FP16": 0x1EF, "AVX10_1_512_AMX": 0xFEF,
                     "AVX512_CORE_AMX": 0xFEF, "AVX10_1_512_AMX_FP16": 0x1FEF, "AVX512_CORE_AMX_FP16": 0x1FEF}
# the oneDNN ISA a flag first belongs to; other avx512 flags: AVX512_CORE; flags not named: never dropped
_FLAG_ISA = {"avx": "AVX", "avx2": "AVX2", "fma": "AVX2", "avx_vnni": "AVX2_VNNI",
             "avx512_vnni": "AVX512_CORE_VNNI", "avx512_bf16": "AVX512_CORE_BF16",
             "avx512_fp16": "AVX512_CORE_FP16", "amx_tile": "AVX512_CORE_AMX", "amx_int8": "AVX512_CORE_AMX",
             "amx_bf16": "AVX512_CORE_AMX", "amx_fp16": "AVX512_CORE_AMX_FP16"}


@functools.lru_cache(maxsize=None)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> Optional[FrozenSet[str]]:
    """The first processor's x86 ``flags`` from ``cpuinfo``; None where there are none to read."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return None


def onednn_isa_cap() -> Optional[str]:
    """``ONEDNN_MAX_CPU_ISA`` (or the older ``DNNL_MAX_CPU_ISA``) upper-cased; None when unset."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return cap.strip().upper() if cap else None


def capped_by_onednn(flags: Optional[FrozenSet[str]], cap: Optional[str]) -> Optional[FrozenSet[str]]:
    """``flags`` less those of instruction sets above oneDNN's ``cap`` (a name of
    ``ONEDNN_ISA_VALUES``; None, "DEFAULT", "ALL" or a name oneDNN does not know: no cap)."""
    if flags is None or cap not in ONEDNN_ISA_VALUES:
        return flags
    allowed = ONEDNN_ISA_VALUES[cap]

    def kept(flag: str) -> bool:
        isa = _FLAG_ISA.get(flag, "AVX512_CORE" if flag.startswith("avx512") else None)
        return isa is None or allowed & ONEDNN_ISA_VALUES[isa] == ONEDNN_ISA_VALUES[isa]

    return frozenset(flag for flag in flags if kept(flag))
