"""What ``eval.py`` does in each mode, given its options."""
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch

from yolact.build import build_dataset, build_postprocessor
from yolact.engine.evaluation.model_loading import load_model_for_inference
from yolact.engine.evaluation.picture_report import picture_report
from yolact.engine.performance_advice import log_performance_advice
from yolact.engine.runtime import select_device
from yolact.errors import YolactError
from yolact.optimize.inference_optimization import optimize_for_inference

__all__ = ["EvalOptions", "run_eval_app", "split_in_out"]

logger = logging.getLogger("yolact")


@dataclass(frozen=True)
class EvalOptions:
    """What ``eval.py`` was asked to do (its ``--help`` documents each option)."""
    weights: str
    config: Optional[str] = None
    overrides: Sequence[str] = ()
    image: Optional[str] = None            # "IN[:OUT]"
    images: Optional[str] = None           # "IN_DIR[:OUT_DIR]"
    video: Optional[str] = None            # "PATH|INDEX[:OUT.mp4]"
    benchmark: bool = False
    max_images: Optional[int] = None
    nms: Optional[str] = None              # None: the config's
    score_threshold: float = 0.15
    top_k: int = 15
    save_json: Optional[str] = None        # "" -> the output folder's detections.json
    output: Optional[str] = None
    device: str = "auto"
    amp: str = "off"
    channels_last: bool = False
    no_optimize: bool = False
    hide_boxes: bool = False               # drawings: no box outlines
    hide_labels: bool = False              # drawings: no "name score" labels
    hide_scores: bool = False              # drawings: labels without the score
    mask_alpha: float = 0.45               # drawings: mask opacity in [0, 1]


def split_in_out(value: str) -> Tuple[str, Optional[str]]:
    """``"in[:out]"`` -> (in, out or None); a Windows drive letter is not a separator."""
    head, sep, tail = value.rpartition(":")
    if not sep or (len(head) == 1 and head.isalpha()) or not head:
        return value, None
    return head, tail


def _output_dir(options: EvalOptions, weights: Path) -> Path:
    if options.output:
        folder = Path(options.output)
    elif weights.parent.name == "weights" and (weights.parent.parent / "config.yaml").is_file():
        folder = weights.parent.parent
    else:
        folder = Path("runs") / f"eval-{weights.stem}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run_eval_app(options: EvalOptions) -> int:
    device = select_device(options.device)
    log_performance_advice(device, amp=options.amp)
    weights = Path(options.weights)
    loaded = load_model_for_inference(weights, config_name=options.config, overrides=options.overrides, device=device)
    if options.no_optimize:
        if options.channels_last:
            loaded.model.to(memory_format=torch.channels_last)
    else:
        optimize_for_inference(loaded.model, device=device, channels_last=True if options.channels_last else None)
    postprocessor = build_postprocessor(loaded.config, nms=options.nms)
    out_dir = _output_dir(options, weights)
    if options.image or options.images or options.video is not None:
        return _run_pictures(options, loaded, postprocessor, device, out_dir)
    dataset = build_dataset(loaded.config, "val")
    if options.benchmark:
        return _run_benchmark(options, loaded, postprocessor, dataset, device)
    return _run_coco_eval(options, loaded, postprocessor, dataset, device, out_dir)


def _run_coco_eval(options: EvalOptions, loaded, postprocessor, dataset, device, out_dir: Path) -> int:
    from yolact.data.loader import make_val_loader
    from yolact.engine.evaluation.coco_results import write_results_json
    from yolact.engine.evaluation.evaluator import evaluate

    if len(dataset.class_names) != len(loaded.class_names):
        raise YolactError(f"{loaded.checkpoint_path}: model has {len(loaded.class_names)} classes, the dataset "
                          f"{loaded.config.data.val_annotations} has {len(dataset.class_names)}")
    loader = make_val_loader(dataset, num_workers=0)
    result = evaluate(loaded.model, postprocessor, loader, dataset, device=device, max_images=options.max_images,
                      amp=options.amp)
    results_path = write_results_json(out_dir / "results.json", result.results)
    if result.summary_text:
        print(result.summary_text)
        print(result.per_class_table)
        (out_dir / "eval_summary.txt").write_text(result.summary_text + "\n" + result.per_class_table + "\n")
    else:
        logger.info("the annotation file has no ground truth: wrote the results json only")
    logger.info(f"{len(result.results)} detections written to {results_path}")
    return 0


def _run_pictures(options: EvalOptions, loaded, postprocessor, device, out_dir: Path) -> int:
    from yolact.engine.evaluation import predictor

    shared = dict(model=loaded.model, postprocessor=postprocessor, input_size=loaded.config.model.input_size,
                  device=device, class_names=loaded.class_names, score_threshold=options.score_threshold,
                  top_k=options.top_k, draw_options=_draw_options(options))
    json_path = None
    if options.save_json is not None:
        json_path = Path(options.save_json) if options.save_json else out_dir / "detections.json"
    started = time.perf_counter()
    if options.image:
        mode, (source, target) = "image", split_in_out(options.image)
        target = target or str(out_dir / (Path(source).stem + "_pred.png"))
        records = predictor.run_on_image(Path(source), Path(target), **shared)
    elif options.images:
        mode, (source, target) = "images", split_in_out(options.images)
        if target is None and json_path is None:
            json_path = out_dir / "results.json"
        records = predictor.run_on_folder(Path(source), Path(target) if target else None, **shared)
    else:
        mode, (source, target) = "video", split_in_out(options.video)
        records = predictor.run_on_video(int(source) if source.isdigit() else source,
                                         Path(target) if target else None, **shared)
    logger.info(picture_report(mode, records, Path(target) if target else None, time.perf_counter() - started,
                               options.score_threshold))
    if json_path is not None:
        predictor.write_detections_json(json_path, records, category_ids=loaded.category_ids,
                                        class_names=loaded.class_names)
        logger.info(f"detections written to {json_path}")
    return 0


def _draw_options(options: EvalOptions) -> dict:
    """The drawing switches of ``options`` as :func:`~yolact.utils.visualize.draw_detections` arguments."""
    if not 0.0 <= options.mask_alpha <= 1.0:
        raise YolactError(f"--mask-alpha must be in [0, 1], got {options.mask_alpha}")
    return dict(draw_boxes=not options.hide_boxes, draw_text=not options.hide_labels,
                draw_scores=not options.hide_scores, alpha=options.mask_alpha)


def _run_benchmark(options: EvalOptions, loaded, postprocessor, dataset, device) -> int:
    from yolact.engine.evaluation.inference_benchmark import benchmark_inference

    count = min(len(dataset), options.max_images or 100)

    def batches():
        for index in range(count):
            image, target = dataset[index]
            yield image[None], [tuple(target["orig_size"])]

    # the model's own memory format (optimize_for_inference turns channels_last on by default on CPU)
    channels_last = options.channels_last or any(
        p.dim() == 4 and not p.is_contiguous() and p.is_contiguous(memory_format=torch.channels_last)
        for p in loaded.model.parameters())
    timing = benchmark_inference(loaded.model, postprocessor, batches(), device=device, amp=options.amp,
                                 channels_last=channels_last)
    print(f"benchmark on {device} ({options.amp} autocast, channels_last={channels_last}, "
          f"optimized={not options.no_optimize}, NMS={postprocessor.nms_method}):")
    print(timing.table())
    return 0
