"""What ``eval.py`` does in each mode, given its parsed arguments."""
import logging
from pathlib import Path
from typing import Optional, Tuple

import torch

from yolact.build import build_dataset, build_postprocessor
from yolact.engine.train.launch import select_device
from yolact.engine.evaluation.model_loading import load_model_for_inference
from yolact.engine.performance_advice import log_performance_advice
from yolact.errors import YolactError
from yolact.optimize.inference_optimization import optimize_for_inference

__all__ = ["run_eval_app", "split_in_out"]

logger = logging.getLogger("yolact")


def split_in_out(value: str) -> Tuple[str, Optional[str]]:
    """``"in[:out]"`` -> (in, out or None); a Windows drive letter is not a separator."""
    head, sep, tail = value.rpartition(":")
    if not sep or (len(head) == 1 and head.isalpha()) or not head:
        return value, None
    return head, tail


def _output_dir(args, weights: Path) -> Path:
    if args.output:
        folder = Path(args.output)
    elif weights.parent.name == "weights" and (weights.parent.parent / "config.yaml").is_file():
        folder = weights.parent.parent
    else:
        folder = Path("runs") / f"eval-{weights.stem}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run_eval_app(args) -> int:
    device = select_device(args.device)
    log_performance_advice(device, amp=args.amp)
    weights = Path(args.weights)
    loaded = load_model_for_inference(weights, config_name=args.config, overrides=args.overrides, device=device)
    if args.no_optimize:
        if args.channels_last:
            loaded.model.to(memory_format=torch.channels_last)
    else:
        optimize_for_inference(loaded.model, device=device, channels_last=True if args.channels_last else None)
    postprocessor = build_postprocessor(loaded.config, nms=args.nms)
    out_dir = _output_dir(args, weights)
    if args.image or args.images or args.video is not None:
        return _run_pictures(args, loaded, postprocessor, device, out_dir)
    dataset = build_dataset(loaded.config, "val")
    if args.benchmark:
        return _run_benchmark(args, loaded, postprocessor, dataset, device)
    return _run_coco_eval(args, loaded, postprocessor, dataset, device, out_dir)


def _run_coco_eval(args, loaded, postprocessor, dataset, device, out_dir: Path) -> int:
    from yolact.data.collate import collate_detections
    from yolact.engine.evaluation.coco_results import write_results_json
    from yolact.engine.evaluation.evaluator import evaluate

    if len(dataset.class_names) != len(loaded.class_names):
        raise YolactError(f"{loaded.checkpoint_path}: model has {len(loaded.class_names)} classes, the dataset "
                          f"{loaded.config.data.val_annotations} has {len(dataset.class_names)}")
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, shuffle=False, num_workers=0,
                                         collate_fn=collate_detections)
    result = evaluate(loaded.model, postprocessor, loader, dataset, device=device, max_images=args.max_images,
                      amp_dtype=_amp_dtype(args.amp))
    results_path = write_results_json(out_dir / "results.json", result.results)
    if result.summary_text:
        print(result.summary_text)
        print(result.per_class_table)
        (out_dir / "eval_summary.txt").write_text(result.summary_text + "\n" + result.per_class_table + "\n")
    else:
        logger.info("the annotation file has no ground truth: wrote the results json only")
    logger.info(f"{len(result.results)} detections written to {results_path}")
    return 0


def _amp_dtype(amp: str):
    return {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def _run_pictures(args, loaded, postprocessor, device, out_dir: Path) -> int:
    from yolact.engine.evaluation import predictor

    options = dict(model=loaded.model, postprocessor=postprocessor, input_size=loaded.config.model.input_size,
                   device=device, class_names=loaded.class_names, score_threshold=args.score_threshold,
                   top_k=args.top_k)
    json_path = None
    if args.save_json is not None:
        json_path = Path(args.save_json) if args.save_json else out_dir / "detections.json"
    if args.image:
        source, target = split_in_out(args.image)
        target = target or str(out_dir / (Path(source).stem + "_pred.png"))
        records = predictor.run_on_image(Path(source), Path(target), **options)
    elif args.images:
        source, target = split_in_out(args.images)
        if target is None and json_path is None:
            json_path = out_dir / "results.json"
        records = predictor.run_on_folder(Path(source), Path(target) if target else None, **options)
    else:
        source, target = split_in_out(args.video)
        records = predictor.run_on_video(int(source) if source.isdigit() else source,
                                         Path(target) if target else None, **options)
    if json_path is not None:
        predictor.write_detections_json(json_path, records, category_ids=loaded.category_ids,
                                        class_names=loaded.class_names)
        logger.info(f"detections written to {json_path}")
    return 0


def _run_benchmark(args, loaded, postprocessor, dataset, device) -> int:
    from yolact.engine.evaluation.inference_benchmark import benchmark_inference

    count = min(len(dataset), args.max_images or 100)

    def batches():
        for index in range(count):
            image, target = dataset[index]
            yield image[None], [tuple(target["orig_size"])]

    timing = benchmark_inference(loaded.model, postprocessor, batches(), device=device, amp=args.amp,
                                 channels_last=args.channels_last)
    print(f"benchmark on {device} ({args.amp} autocast, channels_last={args.channels_last}, "
          f"optimized={not args.no_optimize}, NMS={postprocessor.nms_method}):")
    print(timing.table())
    return 0
