"""Run folders: ``runs/<name>/`` with config.yaml, train.log, metrics.csv, events and weights/."""
import re
from pathlib import Path
from typing import Optional

from yolact.errors import YolactError

__all__ = ["new_run_folder", "latest_run_folder", "find_resume_checkpoint", "LAST_CHECKPOINT"]

LAST_CHECKPOINT = "last.pth"


def new_run_folder(output_dir: Path, name: str, exact: bool = False) -> Path:
    """Create ``output_dir/name``, or ``name-2``, ``name-3``... if taken (unless ``exact``)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    candidate, number = output_dir / name, 1
    while candidate.exists() and not exact:
        number += 1
        candidate = output_dir / f"{name}-{number}"
    (candidate / "weights").mkdir(parents=True, exist_ok=True)
    return candidate


def latest_run_folder(output_dir: Path, name: str) -> Optional[Path]:
    """The most recently modified ``name`` or ``name-N`` run that holds a last checkpoint."""
    pattern = re.compile(rf"^{re.escape(name)}(-\d+)?$")
    runs = [p for p in Path(output_dir).glob("*") if pattern.match(p.name) and (p / "weights" / LAST_CHECKPOINT).is_file()]
    return max(runs, key=lambda p: (p / "weights" / LAST_CHECKPOINT).stat().st_mtime) if runs else None


def find_resume_checkpoint(resume: str, output_dir: Path, name: str) -> Path:
    """``--resume`` value -> checkpoint path: "latest", a run folder, or a checkpoint file."""
    if resume == "latest":
        run = latest_run_folder(output_dir, name)
        if run is None:
            raise YolactError(f"{Path(output_dir) / name}: no run with weights/{LAST_CHECKPOINT} to resume")
        return run / "weights" / LAST_CHECKPOINT
    path = Path(resume)
    if path.is_dir():
        path = path / "weights" / LAST_CHECKPOINT
    if not path.is_file():
        raise YolactError(f"{path}: checkpoint to resume not found")
    return path
