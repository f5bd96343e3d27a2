"""scripts/gpu_check.py without a GPU: argument handling, the dry run, pass/fail/skip logic with
a fake runner, the AP comparison and the table."""
import importlib.util
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("gpu_check", REPO / "scripts" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(gpu_check)

ALL = ["pytest-cuda", "train-off", "train-bf16", "train-fp16", "eval-cuda-vs-cpu", "torchrun-2gpu",
       "bench-train-r50", "bench-train-r101", "bench-infer-r50", "bench-infer-r101", "bench-loss-r50",
       "bench-loss-r101"]

SUMMARY = """bbox (box AP):
 Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = {box}
 Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.900
segm (mask AP):
 Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = {mask}
"""


def test_dry_run_prints_every_command_and_a_planned_table(capsys, tmp_path):
    assert gpu_check.main(["--dry-run", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert [line.split()[0] for line in printed.splitlines() if line.startswith("check")] == ["check"]
    for name in ALL:
        assert f"\n{name} " in printed and "planned" in printed
    assert "train.py --config shapes --name gpu-bf16 --no-eval train.device=cuda" in printed
    assert "train.amp=bf16" in printed and f"--resume {tmp_path}/gpu-bf16 --no-eval train.max_iter=120" in printed
    assert "-m pytest -m cuda -q tests/cuda" in printed
    assert "-m torch.distributed.run --nproc_per_node 2 train.py --config shapes --name gpu-ddp" in printed
    assert "scripts/benchmark.py loss --device cuda --backbone r101 --amp off,bf16,fp16" in printed
    assert "eval.py --weights " + str(tmp_path / "gpu-off" / "weights" / "last.pth") + " --device cpu" in printed


def test_only_selects_in_run_order_and_unknown_names_fail(capsys, tmp_path):
    assert [c.name for c in gpu_check.select(gpu_check.make_checks(tmp_path), "train-fp16,pytest-cuda")] == [
        "pytest-cuda", "train-fp16"]
    assert [c.name for c in gpu_check.make_checks(tmp_path)] == ALL
    assert gpu_check.main(["--dry-run", "--only", "train-fp17"]) == 2
    assert "unknown check(s) ['train-fp17']" in capsys.readouterr().err


def test_no_gpu_is_an_error_not_a_pass(capsys):
    assert gpu_check.main(["--gpus", "0"]) == 2
    assert "no CUDA device visible" in capsys.readouterr().err


def test_status_of_each_check_with_a_fake_runner(tmp_path):
    checks = [gpu_check.Check("ok", [["a"], ["b"]], 5), gpu_check.Check("exit", [["bad"], ["never"]], 5),
              gpu_check.Check("slow", [["slow"]], 5), gpu_check.Check("verify", [["a"]], 5, verify=lambda: "wrong AP"),
              gpu_check.Check("two-gpus", [["a"]], 5, min_gpus=2), gpu_check.Check("late", [["a"]], 5)]
    ran = []

    def fake_run(command, **kwargs):
        ran.append(command[0])
        if command[0] == "slow":
            raise subprocess.TimeoutExpired(command, kwargs["timeout"])
        return SimpleNamespace(returncode=3 if command[0] == "bad" else 0)

    ticks = iter([0, 0, 1, 2, 3, 100])  # the clock passes the budget before "late"
    gpu_check.run_all(checks, log_dir=tmp_path, gpus=1, budget_s=50, run=fake_run, clock=lambda: next(ticks))
    assert ran == ["a", "b", "bad", "slow", "a"]
    assert [(c.status, c.detail.split(" (")[0]) for c in checks] == [
        ("pass", ""), ("fail", "exit code 3"), ("fail", "timed out after 5 s"), ("fail", "wrong AP"),
        ("skip", "needs 2 GPUs, 1 visible"), ("skip", "over the 50 s budget")]
    lines = gpu_check.table(checks).splitlines()
    assert lines[0].split() == ["check", "result", "seconds", "detail"] and len(lines) == 8
    assert lines[3].split()[:2] == ["exit", "fail"]


@pytest.mark.parametrize("cuda_mask, expected", [("0.455", None), ("0.470", "differ by more than 0.01")])
def test_ap_on_cuda_within_a_hundredth_of_the_cpu(tmp_path, cuda_mask, expected):
    (tmp_path / "cuda.txt").write_text(SUMMARY.format(box="0.500", mask=cuda_mask))
    (tmp_path / "cpu.txt").write_text(SUMMARY.format(box="0.505", mask="0.459"))
    assert gpu_check.read_ap((tmp_path / "cpu.txt").read_text()) == [0.505, 0.459]
    problem = gpu_check.compare_ap(tmp_path / "cuda.txt", tmp_path / "cpu.txt")
    assert problem is None if expected is None else expected in problem
    (tmp_path / "cpu.txt").write_text("no detections")
    assert "not found" in gpu_check.compare_ap(tmp_path / "cuda.txt", tmp_path / "cpu.txt")


def test_shell_entry_point_runs_the_python_driver():
    env = {"PYTHON": gpu_check.sys.executable, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--dry-run", "--only", "pytest-cuda"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "[pytest-cuda]" in result.stdout and "planned" in result.stdout
