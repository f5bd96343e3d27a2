"""Images per second through network + Fast NMS + mask assembly, batch 1 and 8, for the model
as trained and after ``optimize_for_inference`` (what eval.py runs)."""
import copy

import torch

from yolact.build import build_model, build_postprocessor
from yolact.engine.evaluation.inference_benchmark import benchmark_inference
from yolact.optimize.inference_optimization import optimize_for_inference

__all__ = ["bench_infer"]


def _sharpen_class_layer(model: torch.nn.Module, generator: torch.Generator) -> None:
    """A random-init head scores every class near 1/81 and detects nothing; give it confident
    random class weights so that NMS and mask assembly see a realistic number of candidates."""
    layer = model.head.cls_layer
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * 0.05)


def bench_infer(args, device, config_for):
    config = config_for(args)
    generator = torch.Generator().manual_seed(0)
    model = build_model(config, pretrained=None)
    _sharpen_class_layer(model, generator)
    model.to(device).eval()
    optimized = copy.deepcopy(model)
    optimize_for_inference(optimized, device=device)
    postprocessor = build_postprocessor(config)
    rows = []
    for batch in ([args.batch] if args.batch else [1, 8]):
        images = torch.randn(batch, 3, args.size, args.size, generator=generator)
        sizes = [(480, 640)] * batch
        as_trained_ms = None
        for variant, variant_model in (("as trained", model), ("optimized", optimized)):
            timing = benchmark_inference(variant_model, postprocessor,
                                         ((images, sizes) for _ in range(args.repeats + args.warmup)),
                                         device=device, warmup=args.warmup)
            with torch.inference_mode():
                detections = postprocessor(variant_model(images.to(device)), sizes, mask_format="none")
            as_trained_ms = as_trained_ms or timing.total_ms
            rows.append({"batch": batch, "model": variant, "network_ms": timing.network_ms, "nms_ms": timing.nms_ms,
                         "masks_ms": timing.masks_ms, "total_ms_per_image": timing.total_ms,
                         "images_per_s": timing.fps, "speedup": as_trained_ms / timing.total_ms,
                         "detections_per_image": sum(len(d["scores"]) for d in detections) / batch})
    notes = [f"backbone {args.backbone}, input {args.size}, masks pasted at 640x480; times are per image",
             "optimized: BatchNorm folded, head convs stacked"
             + (", channels_last, Winograd 3x3 convs (eval.py's default on CPU)" if device.type == "cpu" else "")]
    return rows, ["batch", "model", "network_ms", "nms_ms", "masks_ms", "total_ms_per_image", "images_per_s",
                  "speedup", "detections_per_image"], notes
