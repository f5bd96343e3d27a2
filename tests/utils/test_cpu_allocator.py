"""Freed CPU memory reused by the next step (glibc's mallopt): the settings made, where they are
made, and where glibc then puts large tensors."""
import json
import platform
import subprocess
import sys

import pytest
import torch

from yolact.engine import runtime
from yolact.utils.cpu_allocator import keep_freed_cpu_memory

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


class RecordingLibc:
    def __init__(self, result=1):
        self.calls, self.result = [], result

    def mallopt(self, parameter, value):
        self.calls.append((parameter, value))
        return self.result


def test_sets_the_mmap_threshold_to_glibcs_ceiling_and_never_trims():
    libc = RecordingLibc()
    assert keep_freed_cpu_memory(libc) is True
    # M_MMAP_THRESHOLD (-3) at 32 MiB, M_TRIM_THRESHOLD (-1) at INT_MAX
    assert libc.calls == [(-3, 32 * 1024 * 1024), (-1, 2 ** 31 - 1)]


def test_says_so_when_glibc_refuses():
    assert keep_freed_cpu_memory(RecordingLibc(result=0)) is False


@pytest.mark.parametrize("device, reuse_memory, applied", [("cpu", True, True), ("cpu", False, False),
                                                            ("cuda", True, False)])
def test_applied_on_the_cpu_when_the_config_asks(monkeypatch, device, reuse_memory, applied):
    calls = []
    monkeypatch.setattr(runtime, "keep_freed_cpu_memory", lambda: calls.append(1) or True)
    assert runtime.configure_cpu(torch.device(device), reuse_memory=reuse_memory) is applied
    assert len(calls) == int(applied)


# In a fresh interpreter: glibc's mapped and free bytes around four 16 MiB tensors (a step's
# activations at 192 px are 19 MB each), with or without the setting.
PROBE = """
import ctypes, json, sys
import torch
from yolact.utils.cpu_allocator import keep_freed_cpu_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "keep":
    assert keep_freed_cpu_memory()
before = libc.mallinfo2()
tensors = [torch.empty(4 * 1024 * 1024).fill_(1.0) for _ in range(4)]
alive = libc.mallinfo2()
del tensors
freed = libc.mallinfo2()
print(json.dumps({"mapped": alive.hblkhd - before.hblkhd, "kept_free": freed.fordblks - before.fordblks}))
"""


@pytest.mark.skipif(not GLIBC, reason="needs glibc")
@pytest.mark.parametrize("mode", ["keep", "default"])
def test_large_tensors_come_from_the_heap_and_stay_there_when_freed(mode):
    """Kept: the 64 MiB are carved from the heap (nothing mapped for them) and stay in it, free,
    for the next step. With glibc's defaults (the control) each gets its own mapping, returned
    to the system when freed."""
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    change = json.loads(result.stdout)
    mib = 1024 * 1024
    if mode == "keep":
        assert change["mapped"] == 0 and change["kept_free"] >= 63 * mib, change  # a few KiB reused
    else:
        assert change["mapped"] >= 64 * mib and change["kept_free"] < mib, change


@pytest.mark.parametrize("reuse, calls", [("true", 1), ("false", 0)])
def test_train_py_sets_it_as_train_reuse_cpu_memory_says(tmp_path, monkeypatch, reuse, calls):
    import train
    from tests.engine.tiny_run import make_tiny_shapes, tiny_overrides

    made = []
    monkeypatch.setattr(runtime, "keep_freed_cpu_memory", lambda: made.append(1) or True)
    data_root = make_tiny_shapes(tmp_path / "shapes", num_train=2, num_val=2)
    overrides = tiny_overrides(data_root, tmp_path / "runs", **{"train.max_iter": 1, "train.val_interval": 0,
                                                                 "train.save_interval": 1,
                                                                 "train.reuse_cpu_memory": reuse})
    assert train.main(["--config", "shapes", "--name", "tiny", "--no-eval"] + overrides) == 0
    assert len(made) == calls
