"""Run a function in N gloo processes (spawned, CPU) and collect what each rank returns."""
import os
import socket
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, List

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

# short enough that a rank left waiting in a collective fails the test instead of hanging it
TEST_TIMEOUT = timedelta(seconds=60)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _entry(rank: int, world_size: int, port: int, out_dir: str, fn: Callable, args: tuple) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    out = Path(out_dir) / f"rank{rank}.pt"
    try:
        dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=TEST_TIMEOUT)
        value = fn(rank, world_size, *args)
        torch.save({"value": value}, out)
    except BaseException:
        torch.save({"error": traceback.format_exc()}, out)
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run_in_gloo_group(fn: Callable, world_size: int, out_dir: Path, *args) -> List[Any]:
    """``[fn(rank, world_size, *args) for each rank]``, each rank in its own process of one gloo group.

    ``fn`` must be importable (a module-level function); its return value is saved with torch.save.
    A rank that raised fails with its traceback.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        mp.start_processes(_entry, args=(world_size, _free_port(), str(out_dir), fn, args), nprocs=world_size,
                           start_method="spawn")
    except mp.ProcessRaisedException as error:
        raise AssertionError(str(error)) from None
    except mp.ProcessExitedException:
        # gloo can abort a rank while the group is torn down after its result was saved
        # ("terminate called without an active exception": once in six suite runs on a Zen 5 EPYC);
        # a rank that died before saving still fails below
        if not all((out_dir / f"rank{rank}.pt").is_file() for rank in range(world_size)):
            raise
    values = []
    for rank in range(world_size):
        saved = torch.load(out_dir / f"rank{rank}.pt", weights_only=False)
        assert "error" not in saved, saved.get("error")
        values.append(saved["value"])
    return values
