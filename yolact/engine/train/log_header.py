"""The header of ``train.log``: what ran, with which versions, on which device, on which data."""
import platform
import shlex
import sys
from typing import List, Optional

import torch

__all__ = ["run_header"]


def _versions() -> str:
    import cv2
    import numpy
    import torchvision

    return (f"python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
            f"numpy {numpy.__version__}, opencv {cv2.__version__}")


def _device_text(device: torch.device) -> str:
    if device.type == "cuda" and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda})"
    return f"{device} ({torch.get_num_threads()} threads)"


def _dataset_text(dataset) -> str:
    objects = sum(len(dataset.coco.imgToAnns.get(i, [])) for i in dataset.image_ids)
    return (f"{getattr(dataset, 'annotation_file', '?')}: {len(dataset.image_ids)} images, "
            f"{len(dataset.class_names)} classes, {objects} annotations")


def run_header(*, device: torch.device, start_iteration: int, max_iter: int, dataset=None,
               argv: Optional[List[str]] = None) -> List[str]:
    """Lines for the top of train.log (a resumed run adds its own header below the first one)."""
    argv = sys.argv if argv is None else argv
    lines = [f"command: {shlex.join(argv)}", f"versions: {_versions()}", f"device: {_device_text(device)}",
             f"iterations: {start_iteration} -> {max_iter}" + (" (resumed)" if start_iteration else "")]
    if dataset is not None:
        lines.append(f"train data: {_dataset_text(dataset)}")
    return lines
