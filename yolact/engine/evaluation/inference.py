"""The network and the post-processor on one batch: what evaluation, pictures and videos share."""
from typing import List, Tuple

import torch

from yolact.data.uint8_images import normalize_on_device
from yolact.engine.runtime import autocast
from yolact.modeling.maskiou_head import post_forward_heads

__all__ = ["predict_batch"]


def predict_batch(model: torch.nn.Module, postprocessor, images: torch.Tensor,
                  image_sizes: List[Tuple[int, int]], *, device: torch.device, mask_format: str,
                  amp: str = "off") -> List[dict]:
    """Network + post-processing of images (N,3,S,S): float normalised, or uint8 RGB (normalised
    here, on ``device``, see :mod:`yolact.data.uint8_images`); the caller sets eval mode and no_grad.

    ``amp`` ("off", "bf16", "fp16") autocasts the network. Returns the post-processor's
    per-image dicts at ``image_sizes`` [(h, w)] (see its contract).
    """
    with autocast(device, amp):
        outputs = model(normalize_on_device(images.to(device, non_blocking=True)))
    # post-processing runs in float32 whatever the autocast dtype
    outputs = {key: value.float() if torch.is_tensor(value) and value.is_floating_point() else value
               for key, value in outputs.items()}
    # YOLACT++: the post-processor runs the model's mask-IoU head on the detections
    return postprocessor(outputs, image_sizes, mask_format=mask_format, **post_forward_heads(model))
