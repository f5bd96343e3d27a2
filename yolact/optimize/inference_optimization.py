"""Make a trained model faster for inference without changing what it computes (up to rounding).

Four rewrites, each optional:
- fold every frozen BatchNorm into the convolution before it (the backbone's 53 pairs);
- compute the head's three sibling convs (box, class, coefficients) as one stacked conv;
- channels_last memory format, which oneDNN runs faster on CPU (1x1 convolutions above all);
- Winograd 3x3 convolutions on CPU (``WinogradConv2d``) for the wide convolutions on large maps.

Measured on a 2-core AVX2 CPU at ResNet-50, 550, batch 1, the network takes 0.56 s instead of
0.81 s, and with NMS and masks 0.61 s per image instead of 0.85 s
(``python scripts/benchmark.py infer``). The result is for inference only:
BatchNorm statistics are baked into the weights and the state_dict no longer matches a
checkpoint's.
"""
import logging
from typing import Dict, Optional

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from yolact.utils.cpu_flags import capped_by_onednn, cpu_flags, onednn_isa_cap
from yolact.modeling.head import PredictionHead
from yolact.optimize.winograd_conv import (MIN_IN_CHANNELS, MIN_OUT_CHANNELS, MIN_SPATIAL_SIZE,
                                           WinogradConv2d, is_winograd_candidate, winograd_available)

__all__ = ["fold_batchnorm", "use_winograd_convs", "optimize_for_inference", "winograd_by_default"]

logger = logging.getLogger("yolact")

# Whether Winograd (NNPACK, whose kernels stop at AVX2/FMA3) made the whole model faster than
# oneDNN's direct channels_last 3x3 kernels, by the vector set oneDNN uses (R50, 550, batch 1,
# 2 threads, ``scripts/benchmark.py infer``, network time per image):
# - "avx2", AMD EPYC (AVX2): 256->256 3x3 at 69x69 17 ms instead of 31 ms, at 138x138 50 ms
#   instead of 145 ms; the optimized network 563 ms per image with Winograd (README);
# - "avx512", Intel Xeon (AVX-512, AVX-512-BF16/FP16, no AMX): a single 256->256 3x3 conv takes
#   96 ms instead of 123 ms channels_last at 69x69, 331 instead of 441 at 138x138, but the whole
#   optimized network took 7.33 s with Winograd against 7.20 s without (interleaved medians on
#   a shared machine, 1.02x slower): the NCHW outputs cost the following channels_last convs
#   more than Winograd saves. Off.
# Unmeasured CPUs (other vector sets, non-x86) keep the direct kernels.
WINOGRAD_FASTER = {"avx2": True, "avx512": False}


def _fold_pairs_in(parent: nn.Module) -> int:
    """Fold (Conv2d, BatchNorm2d) pairs that are direct children of ``parent``: consecutive
    entries of a Sequential, or the ``convN``/``bnN`` attributes of torchvision's ResNet blocks
    and stem. The BatchNorm becomes an Identity."""
    children = dict(parent.named_children())
    if isinstance(parent, nn.Sequential):
        names = list(children)
        pairs = [(a, b) for a, b in zip(names, names[1:])]
    else:
        pairs = [(name, "bn" + name[len("conv"):]) for name in children if name.startswith("conv")]
    folded = 0
    for conv_name, bn_name in pairs:
        conv, bn = children.get(conv_name), children.get(bn_name)
        if type(conv) is nn.Conv2d and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
            setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(parent, bn_name, nn.Identity())
            children[conv_name], children[bn_name] = getattr(parent, conv_name), getattr(parent, bn_name)
            folded += 1
    return folded


def fold_batchnorm(model: nn.Module) -> int:
    """Fold each BatchNorm2d into the Conv2d it follows, in place; returns the number folded.

    The model must be in eval mode (BatchNorm uses its running statistics). Folding is
    y = (W*x + b - mean) * gamma / sqrt(var + eps) + beta computed once into W and b.
    """
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode")
    return sum(_fold_pairs_in(module) for module in list(model.modules()))


def use_winograd_convs(model: nn.Module, *, min_in_channels: int = MIN_IN_CHANNELS,
                       min_out_channels: int = MIN_OUT_CHANNELS,
                       min_spatial_size: int = MIN_SPATIAL_SIZE) -> int:
    """Replace every Winograd-eligible 3x3 Conv2d with at least these channels by a
    ``WinogradConv2d``, in place; the map-size condition (``min_spatial_size``) is checked at
    run time.

    Returns the number replaced (0 when this PyTorch build has no NNPACK). The weights of the
    replaced convolutions are made NCHW-contiguous, the layout NNPACK reads.
    """
    if not winograd_available():
        logger.info("NNPACK is not available in this PyTorch build: 3x3 convolutions stay direct")
        return 0
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if (is_winograd_candidate(child) and child.in_channels >= min_in_channels
                    and child.out_channels >= min_out_channels):
                with torch.no_grad():
                    child.weight.data = child.weight.data.contiguous()
                setattr(parent, name, WinogradConv2d(child, min_in_channels=min_in_channels,
                                                     min_out_channels=min_out_channels,
                                                     min_spatial_size=min_spatial_size))
                replaced += 1
    return replaced


def fuse_head_predictors(model: nn.Module) -> int:
    """Call ``fuse_predictors()`` on every PredictionHead of ``model``; returns how many."""
    heads = [module for module in model.modules() if isinstance(module, PredictionHead)]
    for head in heads:
        head.fuse_predictors()
    return len(heads)


def _onednn_vector_isa() -> Optional[str]:
    """"avx512" or "avx2": the widest x86 vector set oneDNN's direct kernels use on this CPU
    (its ONEDNN_MAX_CPU_ISA cap included); None without x86 flags or AVX2 with FMA."""
    flags = cpu_flags()
    if flags is None or not {"avx2", "fma"} <= flags:
        return None
    return "avx512" if "avx512f" in capped_by_onednn(flags, onednn_isa_cap()) else "avx2"


def winograd_by_default(device: torch.device) -> bool:
    """Whether ``optimize_for_inference`` applies Winograd here: on CPUs where it measured
    faster in the whole R50 model (``WINOGRAD_FASTER``), and only with NNPACK."""
    if torch.device(device).type != "cpu":
        return False
    return WINOGRAD_FASTER.get(_onednn_vector_isa(), False) and winograd_available()


def optimize_for_inference(model: nn.Module, *, device: torch.device, fold_bn: bool = True,
                           fuse_head: bool = True, channels_last: Optional[bool] = None,
                           winograd: Optional[bool] = None) -> Dict[str, int]:
    """Apply the rewrites in place to a model in eval mode on ``device``.

    ``channels_last`` defaults to on for CPU and off elsewhere (on CUDA, cuDNN picks its own
    algorithms and the layout matters only with autocast). ``winograd`` defaults to
    ``winograd_by_default(device)``: the table ``WINOGRAD_FASTER``, by the vector instructions
    oneDNN uses on this CPU (read from its flags, not from ATen's capability, which
    ATEN_CPU_CAPABILITY changes without changing oneDNN). Returns counts:
    {"folded_batchnorms", "fused_heads", "winograd_convs", "channels_last"}.
    """
    on_cpu = torch.device(device).type == "cpu"
    channels_last = on_cpu if channels_last is None else channels_last
    if winograd is None:
        winograd = winograd_by_default(device)
    model.eval()
    folded = fold_batchnorm(model) if fold_bn else 0
    fused = fuse_head_predictors(model) if fuse_head else 0
    if channels_last:
        model.to(memory_format=torch.channels_last)
    replaced = use_winograd_convs(model) if winograd else 0
    logger.info(f"inference model: {folded} BatchNorms folded, {fused} head(s) fused, {replaced} Winograd "
                f"3x3 convs, channels_last={channels_last}")
    return {"folded_batchnorms": folded, "fused_heads": fused, "winograd_convs": replaced,
            "channels_last": int(channels_last)}
