"""Images per second through network + Fast NMS + mask assembly, batch 1 and 8, for the model
as trained and after ``optimize_for_inference`` (what eval.py runs); on a CPU with NNPACK also
the other Winograd choice, so that each machine shows whether its default is the faster one.
Each row's ``rewrites`` says what was really applied. YOLACT and, with ``--models
yolact,yolact++``, YOLACT++ on the same backbone (DCNv2, 9 anchors per cell, the mask-IoU head
re-scoring every detection)."""
import copy
import dataclasses
from typing import Dict, List

import torch

from yolact.build import build_model, build_postprocessor
from yolact.config import load_config
from yolact.engine.evaluation.inference_benchmark import benchmark_inference
from yolact.errors import YolactError
from yolact.modeling.maskiou_head import post_forward_heads
from yolact.optimize.inference_optimization import optimize_for_inference, winograd_by_default
from yolact.optimize.winograd_conv import WinogradConv2d, winograd_available

__all__ = ["MODELS", "bench_infer", "plus_overrides"]

MODELS = ("yolact", "yolact++")
BACKBONE_NAMES = {"r101": "R101", "r50": "R50", "r18": "R18", "tiny": "tiny"}
# the reference's plus config of each backbone (the others take ResNet-50's DCN rule)
PLUS_CONFIGS = {"r101": "yolact_plus_base", "r50": "yolact_plus_resnet50"}


def plus_overrides(backbone: str, size: int) -> List[str]:
    """key=value words turning a YOLACT config at input ``size`` into the YOLACT++ of the
    reference's plus config. Below 550 the mask-IoU head keeps the stride-2 convs that its
    prototypes (``size / 4`` a side) can feed, as the YOLACT++ fixture does at 192."""
    model = load_config(PLUS_CONFIGS.get(backbone, "yolact_plus_resnet50")).model
    extent, channels = 2 * -(-size // 8), []  # the prototypes' side: P3's, upsampled twice
    for width in model.maskiou_channels:
        if extent < 3:
            break
        channels.append(width)
        extent = (extent - 3) // 2 + 1
    return [f"model.backbone.dcn_layers={list(model.backbone.dcn_layers)}",
            f"model.backbone.dcn_interval={model.backbone.dcn_interval}",
            f"model.anchor_octave_scales={model.anchor_octave_scales}", "model.use_square_anchors=false",
            "model.use_maskiou=true", f"model.maskiou_channels={channels}",
            "postprocess.rescore_mask=true"]


def _sharpen_class_layer(model: torch.nn.Module, generator: torch.Generator) -> None:
    """A random-init head scores every class near 1/81 and detects nothing; give it confident
    random class weights so that NMS and mask assembly see a realistic number of candidates."""
    layer = model.head.cls_layer
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * 0.05)


def describe_rewrites(counts: Dict[str, int], winograd_taken: int) -> str:
    """optimize_for_inference's counts and the number of convolutions that really ran as
    Winograd -> e.g. "53 BN folded, head fused, channels_last, Winograd in 8 of 18 convs"."""
    if not counts:
        return "none"
    parts = [f"{counts['folded_batchnorms']} BN folded"] if counts["folded_batchnorms"] else []
    parts += ["head fused"] if counts["fused_heads"] else []
    parts += ["channels_last"] if counts["channels_last"] else []
    replaced = counts["winograd_convs"]
    parts.append(f"Winograd in {winograd_taken} of {replaced} convs" if winograd_taken else "no Winograd")
    return ", ".join(parts)


def winograd_convs_taken(model: torch.nn.Module, images: torch.Tensor) -> int:
    """How many of the model's WinogradConv2d take the Winograd path on ``images`` (small maps
    and narrow convolutions stay direct)."""
    taken = []
    hooks = [module.register_forward_pre_hook(lambda m, args: taken.append(m.uses_winograd(args[0])))
             for module in model.modules() if isinstance(module, WinogradConv2d)]
    with torch.inference_mode():
        model(images)
    for hook in hooks:
        hook.remove()
    return sum(taken)


def _variants(model, device):
    """(name, model, rewrites) for the model as trained, as eval.py optimizes it here, and (on a
    CPU with NNPACK) with the other Winograd choice."""
    variants = [("as trained", model, {})]
    default = winograd_by_default(device)
    choices = [(None, "optimized (default)")]
    if device.type == "cpu" and winograd_available():
        choices.append((not default, "optimized, Winograd " + ("off" if default else "on")))
    for winograd, name in choices:
        optimized = copy.deepcopy(model)
        counts = optimize_for_inference(optimized, device=device, winograd=winograd)
        variants.append((name, optimized, counts))
    return variants


def _bench_model(args, device, config, name: str) -> List[dict]:
    generator = torch.Generator().manual_seed(0)
    model = build_model(config, pretrained=None)
    _sharpen_class_layer(model, generator)
    model.to(device).eval()
    variants = _variants(model, device)
    postprocessor = build_postprocessor(config)
    rows = []
    for batch in ([args.batch] if args.batch else [1, 8]):
        images = torch.randn(batch, 3, args.size, args.size, generator=generator)
        sizes = [(480, 640)] * batch
        as_trained_ms = None
        for variant, variant_model, counts in variants:
            timing = benchmark_inference(variant_model, postprocessor,
                                         ((images, sizes) for _ in range(args.repeats + args.warmup)),
                                         device=device, warmup=args.warmup)
            with torch.inference_mode():
                detections = postprocessor(variant_model(images.to(device)), sizes, mask_format="none",
                                           **post_forward_heads(variant_model))
            as_trained_ms = as_trained_ms or timing.total_ms
            taken = winograd_convs_taken(variant_model, images.to(device))
            rows.append({"arch": name, "batch": batch, "model": variant, "rewrites": describe_rewrites(counts, taken),
                         "network_ms": timing.network_ms, "nms_ms": timing.nms_ms,
                         "masks_ms": timing.masks_ms, "total_ms_per_image": timing.total_ms,
                         "images_per_s": timing.fps, "speedup": as_trained_ms / timing.total_ms,
                         "detections_per_image": sum(len(d["scores"]) for d in detections) / batch})
    return rows


def bench_infer(args, device, config_for):
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown or not models:
        raise YolactError(f"--models takes a comma list of {list(MODELS)}, got {args.models!r}")
    rows = []
    for name in models:
        plus = name == "yolact++"
        model_args = dataclasses.replace(args, overrides=[*args.overrides, *plus_overrides(args.backbone, args.size)]) \
            if plus else args
        label = f"{'YOLACT++' if plus else 'YOLACT'} {BACKBONE_NAMES.get(args.backbone, args.backbone)}"
        rows += _bench_model(model_args, device, config_for(model_args), label)
    notes = [f"backbone {args.backbone}, input {args.size}, masks pasted at 640x480; times are per image",
             "optimized (default): what eval.py applies on this machine; 'rewrites' lists what was applied"]
    if "yolact++" in models:
        notes.append("YOLACT++: the DCN rule of the reference's plus config of the backbone (torchvision's "
                     "deform_conv2d), 9 anchors per cell, mask-IoU re-scoring in nms_ms")
    return rows, ["arch", "batch", "model", "rewrites", "network_ms", "nms_ms", "masks_ms",
                  "total_ms_per_image", "images_per_s", "speedup", "detections_per_image"], notes
