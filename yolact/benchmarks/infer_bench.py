"""Images per second through network + Fast NMS + mask assembly, batch 1 and 8, for the model
as trained and after ``optimize_for_inference`` (what eval.py runs); on a CPU with NNPACK also
the other Winograd choice, so that each machine shows whether its default is the faster one.
Each row's ``rewrites`` says what was really applied."""
import copy
from typing import Dict

import torch

from yolact.build import build_model, build_postprocessor
from yolact.engine.evaluation.inference_benchmark import benchmark_inference
from yolact.optimize.inference_optimization import optimize_for_inference, winograd_by_default
from yolact.optimize.winograd_conv import WinogradConv2d, winograd_available

__all__ = ["bench_infer"]


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


def bench_infer(args, device, config_for):
    config = config_for(args)
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
                detections = postprocessor(variant_model(images.to(device)), sizes, mask_format="none")
            as_trained_ms = as_trained_ms or timing.total_ms
            taken = winograd_convs_taken(variant_model, images.to(device))
            rows.append({"batch": batch, "model": variant, "rewrites": describe_rewrites(counts, taken),
                         "network_ms": timing.network_ms, "nms_ms": timing.nms_ms,
                         "masks_ms": timing.masks_ms, "total_ms_per_image": timing.total_ms,
                         "images_per_s": timing.fps, "speedup": as_trained_ms / timing.total_ms,
                         "detections_per_image": sum(len(d["scores"]) for d in detections) / batch})
    notes = [f"backbone {args.backbone}, input {args.size}, masks pasted at 640x480; times are per image",
             "optimized (default): what eval.py applies on this machine; 'rewrites' lists what was applied"]
    return rows, ["batch", "model", "rewrites",
                  "network_ms", "nms_ms", "masks_ms", "total_ms_per_image", "images_per_s",
                  "speedup", "detections_per_image"], notes
