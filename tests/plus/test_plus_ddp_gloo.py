"""YOLACT++ under DDP (find_unused_parameters=False): the mask-IoU head runs after the wrapped
model's forward, inside the criterion, and its gradients are reduced like every other's: two gloo
processes train exactly like one process averaging two images."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.test_ddp_gloo import REFERENCE_SCHEDULE, free_port, single_process_losses
from tests.engine.tiny_run import make_tiny_shapes, tiny_overrides

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_two_gloo_processes_train_yolact_plus_like_one_process(tmp_path):
    data_root = make_tiny_shapes(tmp_path / "shapes")
    # the mask-IoU head of shapes_plus at 64: prototypes 16 -> 7 -> 3 -> 1
    overrides = tiny_overrides(data_root, tmp_path, **{"train.val_interval": 0, "train.max_iter": 3,
                                                       "train.num_threads": 1, **REFERENCE_SCHEDULE})
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(REPO / "train.py"),
               "--config", "shapes_plus", "--name", "ddp", "--no-eval"] + overrides
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "ddp" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and all(float(row["loss_maskiou"]) >= 0 for row in rows)
    expected = single_process_losses(overrides, 3, config_name="shapes_plus")
    assert [float(row["loss_total"]) for row in rows] == pytest.approx(expected, rel=1e-4)
