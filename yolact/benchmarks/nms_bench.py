"""Fast NMS (per class, cross class) against torchvision's batched_nms on the same candidates."""
from pathlib import Path
from typing import Optional

import torch

from yolact.errors import YolactError
from yolact.postprocess.fast_nms import cross_class_fast_nms, fast_nms
from yolact.postprocess.standard_nms import standard_nms
from yolact.utils.timing import time_interleaved_median_ms

__all__ = ["bench_nms", "load_candidates"]

def load_candidates(num_candidates: int, num_classes: int, generator: torch.Generator, path: Optional[str] = None):
    """The candidates in ``path`` (a .pth holding ``{"candidates": {boxes, scores, masks}}``, such as
    the reference's 6660 x 80 fastnms.pth fixture), else seeded random ones.

    Returns boxes (N,4) relative xyxy, scores (C,N) class probabilities, coefficients (N,32), source.
    """
    if path is not None:
        if not Path(path).is_file():
            raise YolactError(f"{path}: candidates file not found")
        candidates = torch.load(Path(path), weights_only=True)["candidates"]
        return candidates["boxes"], candidates["scores"], candidates["masks"], f"{Path(path).name}"
    corners = torch.rand(num_candidates, 2, generator=generator) * 0.8
    boxes = torch.cat([corners, corners + 0.02 + torch.rand(num_candidates, 2, generator=generator) * 0.2], dim=1)
    logits = torch.randn(num_classes + 1, num_candidates, generator=generator) * 2.0
    logits[0] += 2.0
    scores = logits.softmax(dim=0)[1:]
    coeffs = torch.randn(num_candidates, 32, generator=generator).tanh()
    return boxes, scores, coeffs, "seeded random"


def _keys(result):
    return set(zip(result["labels"].tolist(), result["indices"].tolist()))


def bench_nms(args, device, config_for):
    generator = torch.Generator().manual_seed(0)
    num_candidates = 6660 if args.size == 550 else max(16, 6660 * args.size ** 2 // 550 ** 2)
    boxes, scores, coeffs, source = load_candidates(num_candidates, args.classes, generator, args.candidates)
    boxes, scores, coeffs = boxes.to(device), scores.to(device), coeffs.to(device)
    methods = {
        "fast (per class)": lambda: fast_nms(boxes, scores, coeffs, iou_threshold=0.5, top_k=200, max_detections=100),
        "fast (cross class)": lambda: cross_class_fast_nms(boxes, scores, coeffs, iou_threshold=0.5, top_k=200),
        "torchvision batched_nms": lambda: standard_nms(boxes, scores, coeffs, iou_threshold=0.5, conf_threshold=0.05,
                                                        top_k=200, max_detections=100),
    }
    times = time_interleaved_median_ms(methods, repeats=args.repeats, warmup=args.warmup, device=device)
    reference = _keys(methods["torchvision batched_nms"]())
    rows = []
    for name, fn in methods.items():
        kept = _keys(fn())
        rows.append({"method": name, "median_ms": times[name],
                     "speedup_vs_batched_nms": times["torchvision batched_nms"] / times[name],
                     "detections": len(kept), "not_in_standard": len(kept - reference),
                     "standard_not_here": len(reference - kept)})
    notes = [f"{source} candidates: {scores.shape[1]} anchors x {scores.shape[0]} classes; top_k 200 per class, "
             "IoU 0.5, at most 100 detections (cross class: uncapped, as the reference)",
             "the standard path applies the per-class score > 0.05 filter and the same top-200 before batched_nms"]
    return rows, ["method", "median_ms", "speedup_vs_batched_nms", "detections", "not_in_standard",
                  "standard_not_here"], notes
