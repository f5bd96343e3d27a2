"""What ``eval.py`` does in each mode, given its options.

Finished work is never overwritten: unless ``--output`` names a folder, an evaluation writes to
a new ``<run>/eval``, ``eval-2``, ... and a prediction to ``<run>/predict``, ``predict-2``, ...
(``<run>``: the checkpoint's run folder, else ``runs/<checkpoint name>``). Every output place is
checked for writing before the model is loaded; the COCO summary is printed before any file
is written.
"""
import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from yolact.build import build_dataset, build_postprocessor
from yolact.engine.evaluation.model_loading import load_model_for_inference
from yolact.engine.evaluation.picture_report import picture_report
from yolact.engine.performance_advice import log_performance_advice
from yolact.engine.runtime import configure_cuda, select_device
from yolact.errors import YolactError
from yolact.optimize.inference_optimization import optimize_for_inference
from yolact.utils.atomic import atomic_write
from yolact.utils.output_folders import (check_writable_folder, next_free_folder, remove_folder,
                                          remove_if_empty, write_error)

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


def _results_parent(weights: Path) -> Path:
    """The checkpoint's run folder, else ``runs/<checkpoint name>``."""
    if weights.parent.name == "weights" and (weights.parent.parent / "config.yaml").is_file():
        return weights.parent.parent
    return Path("runs") / weights.stem


def _needs_results_folder(options: EvalOptions) -> bool:
    """Whether something goes to the results folder (not only to places the options name)."""
    if options.benchmark:
        return False
    if options.save_json == "":
        return True
    if options.image:
        return split_in_out(options.image)[1] is None
    if options.images:
        return split_in_out(options.images)[1] is None and options.save_json is None
    return options.video is None  # the COCO evaluation


def _named_folders(options: EvalOptions) -> List[Path]:
    """The folders of the output paths the options name explicitly."""
    folders = [Path(options.save_json).parent] if options.save_json else []
    for value, is_folder in ((options.image, False), (options.images, True), (options.video, False)):
        target = split_in_out(value)[1] if value is not None else None
        if target:
            folders.append(Path(target) if is_folder else Path(target).parent)
    return folders


def _check_inputs(options: EvalOptions) -> None:
    """Fail now, in one line naming it, when the picture, folder or video to run on is missing."""
    if options.image and not Path(split_in_out(options.image)[0]).is_file():
        raise YolactError(f"{split_in_out(options.image)[0]}: image not found")
    if options.images and not Path(split_in_out(options.images)[0]).is_dir():
        raise YolactError(f"{split_in_out(options.images)[0]}: image folder not found")
    source = split_in_out(options.video)[0] if options.video is not None else None
    if source is not None and not source.isdigit() and not Path(source).is_file():
        raise YolactError(f"{source}: video file not found")


def _check_outputs(options: EvalOptions, weights: Path) -> None:
    """Fail now, in one line naming the folder, when an output place cannot be written."""
    folders = _named_folders(options)
    if _needs_results_folder(options):
        folders.append(Path(options.output) if options.output else _results_parent(weights))
    for folder in folders:
        check_writable_folder(folder)


def _reserve_output_dir(options: EvalOptions, weights: Path) -> Optional[Path]:
    """Create the results folder: ``--output``, else a new ``eval[-N]``/``predict[-N]``."""
    if not _needs_results_folder(options):
        return None
    if options.output:
        folder = Path(options.output)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise write_error(folder, error) from None
        return folder
    mode = "eval" if not (options.image or options.images or options.video is not None) else "predict"
    return next_free_folder(_results_parent(weights), mode)


def run_eval_app(options: EvalOptions) -> int:
    weights = Path(options.weights)
    _check_inputs(options)
    _check_outputs(options, weights)
    device = select_device(options.device, key="--device")
    configure_cuda(device)
    log_performance_advice(device, amp=options.amp)
    loaded = load_model_for_inference(weights, config_name=options.config, overrides=options.overrides, device=device)
    if options.no_optimize:
        if options.channels_last:
            loaded.model.to(memory_format=torch.channels_last)
    else:
        optimize_for_inference(loaded.model, device=device, channels_last=True if options.channels_last else None)
    postprocessor = build_postprocessor(loaded.config, nms=options.nms)
    if options.image or options.images or options.video is not None:
        work = partial(_run_pictures, options, loaded, postprocessor, device)
        return _with_output_dir(options, weights, work)
    dataset = build_dataset(loaded.config, "val")
    if options.benchmark:
        return _run_benchmark(options, loaded, postprocessor, dataset, device)
    work = partial(_run_coco_eval, options, loaded, postprocessor, dataset, device)
    return _with_output_dir(options, weights, work)


def _with_output_dir(options: EvalOptions, weights: Path, work: Callable[[Optional[Path]], int]) -> int:
    """``work(out_dir)`` in a freshly reserved results folder, removed again if nothing went in or
    the work failed (a ``--output`` folder is the user's: left as it is)."""
    out_dir = _reserve_output_dir(options, weights)
    try:
        code = work(out_dir)
    except BaseException:
        if not options.output:
            remove_folder(out_dir)
        raise
    if not options.output:
        remove_if_empty(out_dir)
    if out_dir is not None and out_dir.is_dir():
        logger.info(f"results in {out_dir}")
    return code


def _run_coco_eval(options: EvalOptions, loaded, postprocessor, dataset, device, out_dir: Path) -> int:
    from yolact.data.loader import make_val_loader
    from yolact.engine.evaluation.coco_results import write_results_json
    from yolact.engine.evaluation.evaluator import evaluate

    if len(dataset.class_names) != len(loaded.class_names):
        raise YolactError(f"{loaded.checkpoint_path}: model has {len(loaded.class_names)} classes, the dataset "
                          f"{loaded.config.data.val_annotations} has {len(dataset.class_names)}")
    loader = make_val_loader(dataset, num_workers=0, pin_memory=device.type == "cuda")
    result = evaluate(loaded.model, postprocessor, loader, dataset, device=device, max_images=options.max_images,
                      amp=options.amp)
    if result.summary_text:  # printed first: a failed write must not hide the numbers
        print(result.summary_text)
        print(result.per_class_table)
        summary = result.summary_text + "\n" + result.per_class_table + "\n"
        atomic_write(out_dir / "eval_summary.txt", lambda handle: handle.write(summary), binary=False)
    results_path = write_results_json(out_dir / "results.json", result.results)
    if not result.summary_text:
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
