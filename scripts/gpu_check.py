"""The GPU checks of issue 13 in one command, with one pass/fail table at the end.

    scripts/gpu_check.sh                 # everything, about 8 minutes on one GPU
    scripts/gpu_check.sh --dry-run       # the commands it would run, and the table of planned checks
    scripts/gpu_check.sh --only pytest-cuda,train-bf16

Checks, in order: the tests marked ``cuda``; 100 iterations of ``train.py --config shapes`` with
``train.amp`` off, bf16 and fp16, each continued with ``--resume``; ``eval.py`` box and mask AP on
CUDA against the CPU (within 0.01) on the fp32 run's weights; ``torchrun --nproc_per_node 2``
with sharded validation and a one-process resume (skipped below 2 GPUs); and
``scripts/benchmark.py train|infer|loss`` for R50 and R101 with amp off/bf16/fp16. Each check has
its own time limit and the whole run a budget: checks that would start past it are skipped.
"""
import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from yolact.utils.timing import format_table  # noqa: E402

AMP_MODES = ("off", "bf16", "fp16")
TRAIN_ITERATIONS, RESUMED_ITERATIONS = 100, 120
AP_TOLERANCE = 0.01
AP_LINE = re.compile(r"Average Precision\s+\(AP\) @\[ IoU=0\.50:0\.95 \| area=\s*all \| maxDets=100 \] = (-?[\d.]+)")


@dataclass
class Check:
    """One line of the table: commands run in order (all must exit 0), then ``verify`` (an error
    text, or None when it passed)."""
    name: str
    commands: List[List[str]]
    timeout_s: int
    min_gpus: int = 1
    verify: Optional[Callable[[], Optional[str]]] = None
    status: str = "planned"
    seconds: float = 0.0
    detail: str = ""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/gpu_check", help="folder for runs, logs and benchmark json")
    parser.add_argument("--only", help="comma list of check names (default: all)")
    parser.add_argument("--budget-s", type=int, default=480, help="skip the checks that would start after this")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and the planned table only")
    parser.add_argument("--gpus", type=int, help="GPU count (default: torch.cuda.device_count())")
    return parser


def _train(py: str, out: Path, name: str, *extra: str) -> List[str]:
    return [py, "train.py", "--config", "shapes", "--name", name, "--no-eval", "train.device=cuda",
            f"train.output_dir={out}", "train.val_interval=0", "train.save_interval=50",
            f"train.max_iter={TRAIN_ITERATIONS}", "data.num_workers=2", *extra]


def _resume(py: str, out: Path, name: str) -> List[str]:
    return [py, "train.py", "--config", "shapes", "--resume", str(out / name), "--no-eval",
            f"train.max_iter={RESUMED_ITERATIONS}"]


def _eval(py: str, out: Path, device: str) -> List[str]:
    return [py, "eval.py", "--weights", str(out / "gpu-off" / "weights" / "last.pth"), "--device", device,
            "--max-images", "100", "--output", str(out / f"eval-{device}")]


def _last_iteration_is(path: Path, iteration: int) -> Callable[[], Optional[str]]:
    def verify():
        from yolact.engine.checkpoint import load_checkpoint

        found = load_checkpoint(path)["iteration"]
        return None if found == iteration else f"{path} at iteration {found}, expected {iteration}"
    return verify


def read_ap(summary_text: str) -> List[float]:
    """[box AP, mask AP] from an eval_summary.txt (COCOeval's AP@[.5:.95] lines, in order)."""
    return [float(value) for value in AP_LINE.findall(summary_text)]


def compare_ap(cuda_summary: Path, cpu_summary: Path, tolerance: float = AP_TOLERANCE) -> Optional[str]:
    """None when box and mask AP on CUDA are within ``tolerance`` of the CPU's, else why not."""
    cuda_ap, cpu_ap = read_ap(cuda_summary.read_text()), read_ap(cpu_summary.read_text())
    if len(cuda_ap) != 2 or len(cpu_ap) != 2:
        return f"box and mask AP not found in {cuda_summary} / {cpu_summary}"
    differences = [abs(a - b) for a, b in zip(cuda_ap, cpu_ap)]
    text = f"box AP {cuda_ap[0]:.4f} vs {cpu_ap[0]:.4f}, mask AP {cuda_ap[1]:.4f} vs {cpu_ap[1]:.4f}"
    return None if max(differences) <= tolerance else f"{text}: differ by more than {tolerance}"


def make_checks(out: Path, py: str = sys.executable) -> List[Check]:
    """Every check, in run order (limits per command; the first training also makes data/shapes)."""
    checks = [Check("pytest-cuda", [[py, "-m", "pytest", "-m", "cuda", "-q", "tests/cuda"]], 120)]
    for amp in AMP_MODES:
        name = f"gpu-{amp}"
        checks.append(Check(f"train-{amp}", [_train(py, out, name, f"train.amp={amp}"), _resume(py, out, name)], 150,
                            verify=_last_iteration_is(out / name / "weights" / "last.pth", RESUMED_ITERATIONS)))
    checks.append(Check("eval-cuda-vs-cpu", [_eval(py, out, "cuda"), _eval(py, out, "cpu")], 90,
                        verify=lambda: compare_ap(out / "eval-cuda" / "eval_summary.txt",
                                                  out / "eval-cpu" / "eval_summary.txt")))
    torchrun = [py, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    ddp_train = _train(py, out, "gpu-ddp", "train.amp=auto", "train.val_interval=50", "train.batch_size=8")
    checks.append(Check("torchrun-2gpu", [torchrun + ddp_train[1:], _resume(py, out, "gpu-ddp")], 120, min_gpus=2,
                        verify=_last_iteration_is(out / "gpu-ddp" / "weights" / "last.pth", RESUMED_ITERATIONS)))
    for command in ("train", "infer", "loss"):
        for backbone in ("r50", "r101"):
            checks.append(Check(f"bench-{command}-{backbone}", [[
                py, "scripts/benchmark.py", command, "--device", "cuda", "--backbone", backbone,
                "--amp", ",".join(AMP_MODES), "--repeats", "5", "--warmup", "2",
                "--json", str(out / f"bench-{command}-{backbone}.json")]], 60))
    return checks


def select(checks: List[Check], only: Optional[str]) -> List[Check]:
    """The checks named in ``only`` (comma list), in run order; unknown names raise ValueError."""
    if not only:
        return checks
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    unknown = sorted(set(wanted) - {check.name for check in checks})
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; known: {[check.name for check in checks]}")
    return [check for check in checks if check.name in wanted]


def run_check(check: Check, log_dir: Path, run: Callable = subprocess.run) -> None:
    """Run ``check``'s commands then its verification; sets status, seconds and detail."""
    start = time.perf_counter()
    check.status, check.detail = "pass", ""
    for index, command in enumerate(check.commands):
        log = log_dir / f"{check.name}.{index}.log"
        try:
            with open(log, "w") as handle:
                result = run(command, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, timeout=check.timeout_s)
        except subprocess.TimeoutExpired:
            check.status, check.detail = "fail", f"timed out after {check.timeout_s} s (log {log})"
            break
        if result.returncode != 0:
            check.status, check.detail = "fail", f"exit code {result.returncode} (log {log})"
            break
    if check.status == "pass" and check.verify is not None:
        problem = check.verify()
        if problem:
            check.status, check.detail = "fail", problem
    check.seconds = time.perf_counter() - start


def run_all(checks: Sequence[Check], *, log_dir: Path, gpus: int, budget_s: float, run: Callable = subprocess.run,
            clock: Callable[[], float] = time.perf_counter) -> None:
    """Run each check that has the GPUs it needs, while the budget lasts."""
    start = clock()
    for check in checks:
        if gpus < check.min_gpus:
            check.status, check.detail = "skip", f"needs {check.min_gpus} GPUs, {gpus} visible"
        elif clock() - start > budget_s:
            check.status, check.detail = "skip", f"over the {budget_s:.0f} s budget"
        else:
            run_check(check, log_dir, run)
        print(f"{check.name}: {check.status} {check.detail}".rstrip(), flush=True)


def table(checks: Sequence[Check]) -> str:
    rows = [{"check": c.name, "result": c.status, "seconds": round(c.seconds, 1), "detail": c.detail}
            for c in checks]
    return format_table(rows, ["check", "result", "seconds", "detail"])


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out).resolve()
    try:
        checks = select(make_checks(out), args.only)
    except ValueError as error:
        print(f"gpu_check: {error}", file=sys.stderr)
        return 2
    if args.dry_run:
        for check in checks:
            for command in check.commands:
                print(f"[{check.name}] {' '.join(command)}")
        print(table(checks))
        return 0
    gpus = args.gpus
    if gpus is None:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus == 0:
        print("gpu_check: no CUDA device visible", file=sys.stderr)
        return 2
    (out / "logs").mkdir(parents=True, exist_ok=True)
    run_all(checks, log_dir=out / "logs", gpus=gpus, budget_s=args.budget_s)
    print(table(checks))
    return 1 if any(check.status == "fail" for check in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
