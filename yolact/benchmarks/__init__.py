"""Benchmarks behind ``scripts/benchmark.py``: each returns (rows, columns, notes)."""
from typing import Callable, List, Tuple

import torch

from yolact.benchmarks.options import BenchmarkOptions

__all__ = ["BenchmarkOptions", "run_benchmark"]


def run_benchmark(command: str, args: BenchmarkOptions, device: torch.device,
                  config_for: Callable) -> Tuple[List[dict], List[str], List[str]]:
    """Dispatch one sub-command; ``config_for(args, num_classes=None)`` builds its config."""
    if command == "nms":
        from yolact.benchmarks.nms_bench import bench_nms as bench
    elif command == "loss":
        from yolact.benchmarks.loss_bench import bench_loss as bench
    elif command == "train":
        from yolact.benchmarks.train_bench import bench_train as bench
    elif command == "infer":
        from yolact.benchmarks.infer_bench import bench_infer as bench
    elif command == "learn":
        from yolact.benchmarks.learn_bench import bench_learn as bench
    else:
        from yolact.benchmarks.data_bench import bench_data as bench
    return bench(args, device, config_for)
