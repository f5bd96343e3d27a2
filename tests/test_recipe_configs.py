"""The recipes' resolved values: coco.yaml is the reference's recipe, small.yaml the measured
short-schedule recipe (README "Benchmarks"), shapes.yaml small.yaml plus its data and a time budget."""
import pytest

from yolact.config import config_to_dict, load_config

# the keys added for short schedules, at the reference's behaviour
TOOLS_OFF = {"warmup_fraction": None, "lr_schedule": "step", "final_lr_ratio": 0.01, "time": None,
             "time_input_sizes": [], "time_min_epochs": 40.0, "time_object_px": 32.0,
             "optimizer": "sgd", "no_decay_norm_bias": False, "ema_decay": None, "ema_tau": 2000.0}
POSTPROCESS = {"conf_threshold": 0.05, "nms_threshold": 0.5, "top_k": 200, "max_detections": 100, "nms": "fast",
               "mask_threshold": 0.5, "crop_at_image_size": False, "maskness_rescore": False,
               "mask_interpolation": "probability", "rescore_mask": False}
LOSS = {"pos_iou_threshold": 0.5, "neg_iou_threshold": 0.4, "crowd_iou_threshold": 0.7, "negpos_ratio": 3,
        "negatives_per_empty_image": 32, "masks_to_train": 100, "cls_weight": 1.0, "box_weight": 1.5,
        "mask_weight": 6.125, "semseg_weight": 1.0, "maskiou_weight": 25.0, "maskiou_min_gt_area": 25.0}
RUN = {"freeze_bn_below": 6, "amp": "off", "grad_clip": None, "val_visualize": 4, "max_nonfinite": 10, "seed": 0,
       "keep_checkpoints": 5, "plots": True,
       "device": "auto", "channels_last": False, "num_threads": None, "reuse_cpu_memory": True,
       "output_dir": "runs"}

# SPEC §0 (yolact_base) and §8 (train.py): the reference's recipe
COCO = {
    "model": {"backbone": {"block": "bottleneck", "layers": [3, 4, 23, 3], "pretrained": "imagenet",
                           "dcn_layers": [0, 0, 0, 0], "dcn_interval": 1},
              "num_classes": None, "input_size": 550, "fpn_channels": 256, "proto_channels": 256,
              "head_channels": 256, "num_prototypes": 32, "anchor_scales": [24, 48, 96, 192, 384],
              "anchor_aspect_ratios": [1.0, 0.5, 2.0], "use_square_anchors": True, "anchor_octave_scales": 1,
              "use_maskiou": False, "maskiou_channels": [8, 16, 32, 64, 128], "init_weights": None},
    "loss": LOSS,
    "postprocess": POSTPROCESS,
    "train": {"batch_size": 8, "lr": 1e-3, "momentum": 0.9, "weight_decay": 5e-4, "warmup_init_lr": 1e-4,
              "warmup_iters": 500, "lr_steps": [280000, 600000, 700000, 750000], "gamma": 0.1, "max_iter": 800000,
              "autoscale": True, "save_interval": 10000, "val_interval": 29316, "val_max_images": 5000,
              "log_interval": 20, **RUN, **TOOLS_OFF},
}

# shapes.yaml: small.yaml's measured recipe (AdamW, cosine, YOLACT++'s anchors, mosaic, the class loss
# weighted 2, positives from IoU 0.4, masks resized as logits, cut at their boxes at full size with a
# 0.1 threshold, ranked by maskness) with a 10-minute budget
SHAPES = {
    "model": {"backbone": {"block": "basic", "layers": [1, 1, 1, 1], "pretrained": None, "dcn_layers": [0, 0, 0, 0],
                           "dcn_interval": 1},
              "num_classes": None, "input_size": 160, "fpn_channels": 64, "proto_channels": 64, "head_channels": 64,
              "num_prototypes": 16, "anchor_scales": [16, 32, 64, 128, 256], "anchor_aspect_ratios": [1.0, 0.5, 2.0],
              "use_square_anchors": False, "anchor_octave_scales": 3, "use_maskiou": False,
              "maskiou_channels": [8, 16, 32, 64, 128], "init_weights": None},
    "loss": {**LOSS, "pos_iou_threshold": 0.4, "neg_iou_threshold": 0.3, "cls_weight": 2.0},
    "postprocess": {**POSTPROCESS, "mask_threshold": 0.1, "mask_interpolation": "logit",
                    "crop_at_image_size": True, "maskness_rescore": True},
    "train": {"batch_size": 8, "lr": 0.004, "momentum": 0.9, "weight_decay": 0.05, "warmup_init_lr": 1e-4,
              "warmup_iters": 500, "lr_steps": [], "gamma": 0.1, "max_iter": 2400, "autoscale": False,
              "save_interval": 800, "val_interval": 800, "val_max_images": None, "log_interval": 10,
              **RUN, "amp": "auto", "channels_last": "auto", **TOOLS_OFF, "optimizer": "adamw", "no_decay_norm_bias": True,
              "lr_schedule": "cosine", "warmup_fraction": 0.05, "time": 10.0, "time_object_px": 32.0},
    "data": {"train_images": "data/shapes/train", "train_annotations": "data/shapes/annotations/instances_train.json",
             "val_images": "data/shapes/val", "val_annotations": "data/shapes/annotations/instances_val.json",
             "make_shapes": True, "keep_empty": False,
             "augment": {"photometric": True, "expand": False, "random_crop": False, "mirror": True,
                         "min_box_size": 4.0, "scale_jitter": None, "mosaic_prob": 0.5, "copy_paste_prob": 0.5,
                         "close_mosaic_fraction": 0.0},
             "num_workers": "auto", "pin_memory": False, "persistent_workers": True, "uint8_images": False,
             "cache": True},
}


@pytest.mark.parametrize("section", ["model", "loss", "postprocess", "train"])
def test_coco_is_the_reference_recipe(section):
    assert config_to_dict(load_config("coco"))[section] == COCO[section]


@pytest.mark.parametrize("section", ["model", "loss", "postprocess", "train", "data"])
def test_shapes_is_the_small_recipe_with_a_time_budget(section):
    assert config_to_dict(load_config("shapes"))[section] == SHAPES[section]


def test_small_is_shapes_without_the_shapes_data():
    small, shapes = config_to_dict(load_config("small")), config_to_dict(load_config("shapes"))
    for section in ("loss", "postprocess"):
        assert small[section] == shapes[section]
    # the shapes images are 160 px; the recipe's input is 192, or larger for small objects on a fast machine
    assert small["model"] == {**shapes["model"], "input_size": 192}
    assert small["train"] == {**shapes["train"], "time": None,  # the user sets the budget
                              "time_input_sizes": [192, 224, 256]}
    assert small["data"]["make_shapes"] is False
    assert small["data"]["train_annotations"] == "data/custom/train/annotations.json"
    for key in ("augment", "keep_empty", "num_workers", "pin_memory", "persistent_workers", "cache"):
        assert small["data"][key] == shapes["data"][key]
