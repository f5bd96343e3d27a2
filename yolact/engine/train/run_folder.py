"""Run folders: ``runs/<name>/`` with config.yaml, train.log, metrics.csv, events and weights/.

A new run's folder is planned first (:func:`plan_run_folder`: name chosen, writability checked,
nothing created) and created only once every input is validated (:func:`create_run_folder`),
so a run that fails early leaves nothing behind.
"""
import re
from pathlib import Path
from typing import Optional

import torch

from yolact.errors import YolactError
from yolact.utils.atomic import atomic_write
from yolact.utils.output_folders import check_writable_folder, write_error

__all__ = ["plan_run_folder", "create_run_folder", "last_checkpoint_note", "latest_run_folder",
           "find_resume_checkpoint", "LAST_CHECKPOINT"]

LAST_CHECKPOINT = "last.pth"


def plan_run_folder(output_dir: Path, name: str, exact: bool = False) -> Path:
    """``output_dir/name``, or ``name-2``, ``name-3``... if taken (unless ``exact``); nothing is created.

    Raises OutputWriteError (one line naming the folder) when ``output_dir`` cannot be written.
    """
    check_writable_folder(output_dir)
    candidate, number = Path(output_dir) / name, 1
    while candidate.exists() and not exact:
        number += 1
        candidate = Path(output_dir) / f"{name}-{number}"
    return candidate


def create_run_folder(run_dir: Path, config_text: str, exact: bool = False) -> None:
    """Create a planned run folder with ``weights/`` and ``config.yaml``.

    A folder taken meanwhile by another run (not ``exact``) raises YolactError.
    """
    try:
        Path(run_dir).mkdir(parents=True, exist_ok=exact)
        (Path(run_dir) / "weights").mkdir(exist_ok=True)
    except FileExistsError:
        raise YolactError(f"{run_dir}: taken by another run started meanwhile; start again") from None
    except OSError as error:
        raise write_error(Path(run_dir), error) from None
    atomic_write(Path(run_dir) / "config.yaml", lambda handle: handle.write(config_text), binary=False)


def last_checkpoint_note(run_dir: Optional[Path]) -> str:
    """Names the last good checkpoint ("the last good checkpoint is <run>/weights/last.pth (iteration N)")
    or says there is none."""
    if run_dir is None:
        return "the checkpoints are written by rank 0"
    path = Path(run_dir) / "weights" / LAST_CHECKPOINT
    try:
        iteration = torch.load(path, map_location="cpu", weights_only=True, mmap=True)["iteration"]
    except Exception:  # missing or unreadable: there is no good checkpoint to name
        return "no checkpoint was saved"
    return f"the last good checkpoint is {path} (iteration {iteration})"


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
