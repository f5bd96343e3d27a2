"""FPS of network + NMS + mask assembly, measured the way the paper reports it."""
import statistics
import time
from dataclasses import dataclass
from typing import Iterable, List, Tuple

import torch

from yolact.engine.runtime import autocast
from yolact.modeling.maskiou_head import post_forward_heads

__all__ = ["InferenceTiming", "benchmark_inference"]


@dataclass
class InferenceTiming:
    images: int            # timed images (after warm-up)
    network_ms: float      # median backbone + FPN + protonet + head
    nms_ms: float          # median decoding + NMS
    masks_ms: float        # median mask assembly at the original size
    total_ms: float        # median of the three together

    @property
    def fps(self) -> float:
        return 1000.0 / self.total_ms if self.total_ms > 0 else float("inf")

    def table(self) -> str:
        rows = [("network (backbone+heads)", self.network_ms), ("NMS", self.nms_ms), ("masks", self.masks_ms),
                ("total", self.total_ms)]
        lines = [f"{'stage':<26}{'median ms':>10}"] + [f"{name:<26}{ms:>10.2f}" for name, ms in rows]
        return "\n".join(lines + [f"{'FPS':<26}{self.fps:>10.2f}  ({self.images} images)"])


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def benchmark_inference(model, postprocessor, batches: Iterable[Tuple[torch.Tensor, List[tuple]]], *,
                        device: torch.device, amp: str = "off", channels_last: bool = False,
                        warmup: int = 2) -> InferenceTiming:
    """Time each batch (images (B,3,S,S), original sizes) through the three stages.

    Loading is excluded, the first ``warmup`` batches are not timed, and the device is
    synchronised around each stage. Times are per image (batch time / B).
    """
    model.eval()
    heads = post_forward_heads(model)  # YOLACT++: the mask-IoU head re-scores in post-processing
    network, nms, masks = [], [], []
    with torch.inference_mode():
        for index, (images, sizes) in enumerate(batches):
            images = images.to(device)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            _synchronize(device)
            start = time.perf_counter()
            with autocast(device, amp):
                outputs = model(images)
            outputs = {k: v.float() if torch.is_tensor(v) else v for k, v in outputs.items()}
            _synchronize(device)
            after_network = time.perf_counter()
            postprocessor(outputs, sizes, mask_format="none", **heads)
            _synchronize(device)
            after_nms = time.perf_counter()
            postprocessor(outputs, sizes, mask_format="bool", **heads)
            _synchronize(device)
            end = time.perf_counter()
            if index < warmup:
                continue
            per_image = 1000.0 / images.shape[0]
            network.append((after_network - start) * per_image)
            nms.append((after_nms - after_network) * per_image)
            masks.append(max(0.0, (end - after_nms) - (after_nms - after_network)) * per_image)
    if not network:
        raise ValueError(f"benchmark needs more than {warmup} warm-up batches")
    totals = [a + b + c for a, b, c in zip(network, nms, masks)]
    return InferenceTiming(images=len(network), network_ms=statistics.median(network), nms_ms=statistics.median(nms),
                           masks_ms=statistics.median(masks), total_ms=statistics.median(totals))
