"""What a user gets out of training: the recipe trained within ``--budget`` minutes, scored with COCOeval.

    python scripts/benchmark.py learn --budget 15 --train DIR --val DIR [--config small] [--seed N]

``DIR`` holds ``images/`` and ``annotations.json`` (COCO format), as ``python -m
yolact.data.hard_shapes`` writes them. The run trains under ``train.time=<budget>``; its final
evaluation (pycocotools' COCOeval on the whole validation json) gives the mask and box AP.
With ``train.time=null train.max_iter=N`` among the overrides it trains a fixed N iterations
instead (``budget_min`` is then null), as the README's fixed-length comparisons do.
"""
import json
import time
from pathlib import Path
from typing import List, Tuple

import yaml

from yolact.config import load_config
from yolact.errors import YolactError

__all__ = ["bench_learn", "LEARN_COLUMNS"]

LEARN_COLUMNS = ["config", "seed", "budget_min", "input_px", "iterations", "images_seen", "mask_AP", "box_AP",
                 "wall_s"]


def _data_overrides(train_dir: Path, val_dir: Path) -> List[str]:
    for folder in (train_dir, val_dir):
        if not (folder / "annotations.json").is_file():
            raise YolactError(f"{folder}: expected images/ and annotations.json (COCO format)")
    return [f"data.train_images={train_dir / 'images'}",
            f"data.train_annotations={train_dir / 'annotations.json'}",
            f"data.val_images={val_dir / 'images'}", f"data.val_annotations={val_dir / 'annotations.json'}",
            "data.make_shapes=false"]


def bench_learn(args, device, config_for) -> Tuple[List[dict], List[str], List[str]]:
    """Train ``args.config`` (a recipe) on ``args.train`` for ``args.budget`` minutes; one row."""
    from yolact.engine.train.launch import launch_training
    from yolact.engine.train.run_folder import plan_run_folder

    if not args.train or not args.val:
        raise YolactError("learn needs --train DIR and --val DIR")
    overrides = [*_data_overrides(Path(args.train), Path(args.val)), f"train.time={args.budget}",
                 f"train.seed={args.seed}", f"train.device={device}", *args.overrides]
    config = load_config(args.config, overrides)
    stem = Path(args.config).stem
    run_dir = plan_run_folder(Path(config.train.output_dir), f"learn-{stem}-seed{args.seed}")
    start = time.perf_counter()
    launch_training(config, config_name=args.config, run_name=run_dir.name, overrides=overrides)
    wall_s = time.perf_counter() - start
    metrics_path = run_dir / "final_metrics.json"
    if not metrics_path.is_file():
        raise YolactError(f"{run_dir}: training ended without its final evaluation (stopped early?)")
    metrics = json.loads(metrics_path.read_text())
    # the size the run trained at (train.time_input_sizes may have chosen it)
    input_px = yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["input_size"]
    iterations = int(metrics["iteration"])
    budget = config.train.time  # the overrides may have turned the budget off
    row = {"config": stem, "seed": args.seed, "budget_min": budget, "input_px": input_px,
           "iterations": iterations, "images_seen": iterations * config.train.batch_size,
           "mask_AP": metrics.get("segm/AP", float("nan")), "box_AP": metrics.get("bbox/AP", float("nan")),
           "wall_s": wall_s}
    length = (f"train.time={budget}" if budget is not None
              else f"no time budget, train.max_iter={config.train.max_iter}")
    notes = [f"{args.config} with {length} on {args.train}; COCOeval on {args.val}; "
             f"run in {run_dir}",
             "wall_s counts the whole run: data and model set-up, training and the final evaluation"]
    return [row], LEARN_COLUMNS, notes
