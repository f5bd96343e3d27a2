"""SIGKILL at random moments never leaves a broken latest checkpoint, and --resume carries on."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.engine.tiny_run import make_tiny_shapes, tiny_overrides

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def start(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, str(REPO / "train.py"), "--config", "shapes", "--no-eval"] + args,
                            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_sigkill_at_random_moments_then_resume(tmp_path):
    data_root = make_tiny_shapes(tmp_path / "shapes")
    overrides = tiny_overrides(data_root, tmp_path, **{"train.val_interval": 0, "train.max_iter": 100000,
                                                       "train.save_interval": 1, "train.num_threads": 1})
    last = tmp_path / "kill" / "weights" / "last.pth"
    rng = random.Random(7)
    iterations = []
    for attempt in range(3):
        args = (["--name", "kill"] if attempt == 0 else ["--resume", str(tmp_path / "kill")]) + overrides
        process = start(args, tmp_path)
        deadline = time.time() + 120
        while time.time() < deadline and not (last.exists() and
                                              (not iterations or last.stat().st_mtime > iterations[-1][1])):
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))  # somewhere inside a step or a checkpoint write
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        checkpoint = torch.load(last, weights_only=True)  # always loadable
        assert checkpoint["iteration"] >= 1
        iterations.append((checkpoint["iteration"], last.stat().st_mtime))
    assert [it for it, _ in iterations] == sorted(it for it, _ in iterations)
    final = iterations[-1][0] + 2
    process = start(["--resume", str(tmp_path / "kill")] + overrides + [f"train.max_iter={final}"],
                    tmp_path)
    assert process.wait(timeout=180) == 0
    assert torch.load(last, weights_only=True)["iteration"] == final
    leftovers = [p.name for p in last.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # temporaries of killed writes are cleaned up on the next start
