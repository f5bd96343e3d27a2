"""A tiny real training setup shared by the end-to-end tests: shapes data, a 16-channel model."""
from pathlib import Path
from typing import List

SHAPES_IMAGE_SIZE = 64


def make_tiny_shapes(root: Path, num_train: int = 8, num_val: int = 4) -> Path:
    """Write a small synthetic shapes dataset (COCO json + JPEGs) under ``root``."""
    from yolact.data.shapes import make_shapes_dataset

    if not (root / "annotations" / "instances_train.json").is_file():
        make_shapes_dataset(root, num_train=num_train, num_val=num_val, image_size=SHAPES_IMAGE_SIZE, seed=3)
    return root


# the warmup-then-steps schedule that tiny_overrides' warmup_iters and lr_steps describe, for tests
# of its exact learning rates or of a resume that lengthens max_iter (a cosine decay depends on it)
STEP_SCHEDULE = {"train.lr_schedule": "step", "train.warmup_fraction": "null"}


def tiny_overrides(data_root: Path, output_dir: Path, **extra) -> List[str]:
    """``key=value`` words for train.py: a few iterations of a tiny model on the tiny data."""
    values = {
        "data.train_images": data_root / "train",
        "data.train_annotations": data_root / "annotations" / "instances_train.json",
        "data.val_images": data_root / "val",
        "data.val_annotations": data_root / "annotations" / "instances_val.json",
        "data.num_workers": 0,
        "data.make_shapes": "false",
        "model.backbone.block": "basic",
        "model.backbone.layers": "[1,1,1,1]",
        "model.backbone.pretrained": "null",
        "model.input_size": SHAPES_IMAGE_SIZE,
        "model.fpn_channels": 16,
        "model.proto_channels": 16,
        "model.head_channels": 16,
        "model.num_prototypes": 8,
        "model.anchor_scales": "[8,16,32,64,128]",
        "train.batch_size": 2,
        "train.lr": 0.001,
        "train.warmup_iters": 2,
        "train.lr_steps": "[5]",
        "train.max_iter": 4,
        "train.save_interval": 2,
        "train.val_interval": 2,
        "train.val_max_images": 4,
        "train.val_visualize": 2,
        "train.log_interval": 1,
        "train.time": "null",  # exact iteration counts, whatever the recipe's time budget
        "train.time_input_sizes": "[]",  # and the size above, whatever the recipe's candidates
        "train.device": "cpu",
        "train.amp": "off",  # fp32 on every CPU, AMX or not (the auto rule has its own tests)
        "train.output_dir": output_dir,
    }
    values.update(extra)
    return [f"{key}={value}" for key, value in values.items()]
