"""The one place that reads a :class:`~yolact.config.Config` and builds the parts from it.

Every module below takes plain keyword arguments; these builders translate config keys into
those arguments, so a user of the library can also skip the config and call the modules.
"""
import dataclasses
from pathlib import Path
from typing import Callable, Optional, Tuple

from yolact.config import Config
from yolact.errors import YolactError

__all__ = ["build_model", "build_criterion", "build_postprocessor", "build_dataset", "build_optimizer",
           "build_lr_schedule", "build_ema_hook", "build_time_budget_hook", "build_train_loader",
           "build_val_loader", "build_num_workers", "with_num_classes", "BASE_BATCH_SIZE"]

BASE_BATCH_SIZE = 8  # the reference's default batch, the unit of autoscaling


def with_num_classes(config: Config, num_classes: int) -> Config:
    """A copy of ``config`` whose ``model.num_classes`` is fixed (e.g. read from the dataset)."""
    model = dataclasses.replace(config.model, num_classes=num_classes)
    return dataclasses.replace(config, model=model)


def _num_classes(config: Config) -> int:
    if config.model.num_classes is None:
        raise ValueError("model.num_classes is not resolved yet: call with_num_classes() first")
    return config.model.num_classes


def build_model(config: Config, pretrained: Optional[str] = "config"):
    """YOLACT network of ``config``; ``pretrained="config"`` uses ``model.backbone.pretrained``."""
    from yolact.modeling.yolact import make_yolact

    model_cfg = config.model
    return make_yolact(
        num_classes=_num_classes(config),
        block=model_cfg.backbone.block,
        layers=tuple(model_cfg.backbone.layers),
        fpn_channels=model_cfg.fpn_channels,
        proto_channels=model_cfg.proto_channels,
        head_channels=model_cfg.head_channels,
        num_prototypes=model_cfg.num_prototypes,
        anchor_scales=tuple(model_cfg.anchor_scales),
        anchor_aspect_ratios=tuple(model_cfg.anchor_aspect_ratios),
        use_square_anchors=model_cfg.use_square_anchors,
        dcn_layers=tuple(model_cfg.backbone.dcn_layers),
        dcn_interval=model_cfg.backbone.dcn_interval,
        anchor_octave_scales=model_cfg.anchor_octave_scales,
        use_maskiou=model_cfg.use_maskiou,
        maskiou_channels=tuple(model_cfg.maskiou_channels),
        pretrained=model_cfg.backbone.pretrained if pretrained == "config" else pretrained,
    )


def build_criterion(config: Config):
    """The training loss of ``config`` (SPEC §6)."""
    from yolact.loss.criterion import YolactCriterion

    loss_cfg = config.loss
    return YolactCriterion(
        num_classes=_num_classes(config),
        pos_iou_threshold=loss_cfg.pos_iou_threshold,
        neg_iou_threshold=loss_cfg.neg_iou_threshold,
        crowd_iou_threshold=loss_cfg.crowd_iou_threshold,
        negpos_ratio=loss_cfg.negpos_ratio,
        negatives_per_empty_image=loss_cfg.negatives_per_empty_image,
        masks_to_train=loss_cfg.masks_to_train,
        cls_weight=loss_cfg.cls_weight,
        box_weight=loss_cfg.box_weight,
        mask_weight=loss_cfg.mask_weight,
        semseg_weight=loss_cfg.semseg_weight,
        use_maskiou=config.model.use_maskiou,
        maskiou_weight=loss_cfg.maskiou_weight,
        maskiou_min_gt_area=loss_cfg.maskiou_min_gt_area,
    )


def build_postprocessor(config: Config, *, nms: Optional[str] = None, score_threshold: float = 0.0):
    """Inference post-processing of ``config``; ``nms`` overrides ``postprocess.nms``."""
    from yolact.postprocess.postprocessor import YolactPostProcessor

    post_cfg = config.postprocess
    return YolactPostProcessor(
        conf_threshold=post_cfg.conf_threshold,
        nms_threshold=post_cfg.nms_threshold,
        top_k=post_cfg.top_k,
        max_detections=post_cfg.max_detections,
        nms_method=nms or post_cfg.nms,
        mask_threshold=post_cfg.mask_threshold,
        crop_at_image_size=post_cfg.crop_at_image_size,
        mask_interpolation=post_cfg.mask_interpolation,
        maskness_rescore=post_cfg.maskness_rescore,
        score_threshold=score_threshold,
        rescore_mask=post_cfg.rescore_mask and config.model.use_maskiou,
    )


def build_dataset(config: Config, split: str, *, train_transform: Optional[bool] = None, loader_processes: int = 1):
    """The ``"train"`` or ``"val"`` dataset of ``config``, with the matching transform.

    ``loader_processes``: the processes that will load it (each holds its own ``data.cache``).
    """
    from yolact.data.coco import CocoInstanceDataset
    from yolact.data.mixing import SampleMixer
    from yolact.data.transforms import EvalTransform, TrainTransform

    data_cfg = config.data
    image_dir, annotations = ((data_cfg.train_images, data_cfg.train_annotations) if split == "train"
                              else (data_cfg.val_images, data_cfg.val_annotations))
    augment = split == "train" if train_transform is None else train_transform
    mixer = None
    if augment:
        aug = data_cfg.augment
        _check_augment(aug)
        transform = TrainTransform(input_size=config.model.input_size, photometric=aug.photometric,
                                   expand=aug.expand, random_crop=aug.random_crop, mirror=aug.mirror,
                                   min_box_size=aug.min_box_size, scale_range=aug.scale_jitter,
                                   uint8_output=data_cfg.uint8_images)
        if aug.mosaic_prob > 0 or aug.copy_paste_prob > 0:
            mixer = SampleMixer(mosaic_prob=aug.mosaic_prob, copy_paste_prob=aug.copy_paste_prob,
                                mosaic_size=config.model.input_size)
    else:
        transform = EvalTransform(input_size=config.model.input_size, uint8_output=data_cfg.uint8_images)
    # Evaluation keeps images without objects: their false positives count, as in COCOeval.
    keep_empty = data_cfg.keep_empty if split == "train" else True
    return CocoInstanceDataset(Path(image_dir), Path(annotations), transform=transform, keep_empty=keep_empty,
                               mixer=mixer, cache=data_cfg.cache and split == "train",
                               cache_copies=loader_processes)


def _scaled_schedule(config: Config) -> Tuple[float, int, Tuple[int, ...]]:
    """(lr, max_iter, lr_steps), scaled to ``train.batch_size`` when ``train.autoscale`` is on."""
    from yolact.engine.train.lr_schedule import autoscale_schedule

    train_cfg = config.train
    if not train_cfg.autoscale or train_cfg.batch_size == BASE_BATCH_SIZE:
        return train_cfg.lr, train_cfg.max_iter, tuple(train_cfg.lr_steps)
    return autoscale_schedule(batch_size=train_cfg.batch_size, base_batch_size=BASE_BATCH_SIZE, lr=train_cfg.lr,
                              max_iter=train_cfg.max_iter, lr_steps=train_cfg.lr_steps)


def build_lr_schedule(config: Config) -> Tuple[Callable[[int], float], int]:
    """``(lr_at(iteration), max_iter)``: warmup, then ``train.lr_schedule`` decay (SPEC §8: step),
    autoscaled to the batch. ``lr_at`` is an :class:`~yolact.engine.train.lr_schedule.LrSchedule`."""
    from yolact.engine.train.lr_schedule import LrSchedule

    train_cfg = config.train
    base_lr, max_iter, lr_steps = _scaled_schedule(config)
    schedule = LrSchedule(kind=train_cfg.lr_schedule, base_lr=base_lr, warmup_init_lr=train_cfg.warmup_init_lr,
                          warmup_iters=_warmup_iters(config, max_iter), total_iters=max_iter,
                          lr_steps=lr_steps, gamma=train_cfg.gamma, final_lr_ratio=train_cfg.final_lr_ratio)
    return schedule, max_iter


def _warmup_iters(config: Config, max_iter: int) -> int:
    fraction = config.train.warmup_fraction
    if fraction is None:
        return config.train.warmup_iters
    if not 0.0 <= fraction < 1.0:
        raise YolactError(f"train.warmup_fraction must be in [0, 1), got {fraction}")
    return round(fraction * max_iter)


def build_optimizer(config: Config, model):
    """``train.optimizer`` over ``model``'s parameters (SPEC §8: SGD, decay on every parameter)."""
    from yolact.engine.train.optimizer import make_optimizer

    train_cfg = config.train
    return make_optimizer(model, name=train_cfg.optimizer, lr=_scaled_schedule(config)[0],
                          momentum=train_cfg.momentum, weight_decay=train_cfg.weight_decay,
                          no_decay_norm_bias=train_cfg.no_decay_norm_bias)


def build_ema_hook(config: Config):
    """The weight-averaging hook of ``train.ema_decay``, or None when it is off."""
    from yolact.engine.train.ema import EmaHook

    train_cfg = config.train
    if train_cfg.ema_decay is None:
        return None
    if not 0.0 <= train_cfg.ema_decay < 1.0:
        raise YolactError(f"train.ema_decay must be in [0, 1), got {train_cfg.ema_decay}")
    return EmaHook(decay=train_cfg.ema_decay, tau=train_cfg.ema_tau)


def build_time_budget_hook(config: Config, *, val_images: int, final_eval: bool, spent_s: float = 0.0):
    """The hook that plans the run's length within ``train.time`` minutes, or None when it is off.

    ``val_images``: images of each evaluation; ``final_eval``: whether one ends the run;
    ``spent_s``: seconds of the budget spent before training (choosing the input size).
    """
    from yolact.engine.train.time_budget import TimeBudgetHook
    from yolact.engine.train.time_plan import Plan

    train_cfg = config.train
    if train_cfg.time is None:
        return None
    if train_cfg.time <= 0:
        raise YolactError(f"train.time must be a positive number of minutes, got {train_cfg.time}")
    schedule, max_iter = build_lr_schedule(config)
    nominal = Plan(max_iter=max_iter, warmup_iters=schedule.warmup_iters, lr_steps=schedule.lr_steps,
                              val_interval=train_cfg.val_interval, save_interval=train_cfg.save_interval)
    return TimeBudgetHook(budget_min=train_cfg.time, nominal=nominal, schedule=schedule,
                          val_images=val_images, batch_size=train_cfg.batch_size, final_eval=final_eval,
                          spent_s=spent_s)


def build_num_workers(config: Config, device_type: str, *, world_size: int = 1) -> int:
    """The worker processes of ``data.num_workers`` ("auto": per device, see :mod:`yolact.data.workers`)."""
    from yolact.data.workers import resolve_num_workers

    num_workers = config.data.num_workers
    if num_workers != "auto" and num_workers < 0:
        raise YolactError(f"data.num_workers must be >= 0 or \"auto\", got {num_workers}")
    return resolve_num_workers(num_workers, device_type, processes_per_host=world_size)


def build_train_loader(config: Config, dataset, *, batch_per_rank: int, start_iteration: int, rank: int = 0,
                       world_size: int = 1, pin_memory: bool = False, device_type: str = "cpu"):
    """The endless, resumable training loader of ``config`` (see :mod:`yolact.data.loader`) for
    training on a ``device_type`` device."""
    from yolact.data.loader import make_train_loader

    data_cfg = config.data
    return make_train_loader(dataset, batch_size=batch_per_rank, seed=config.train.seed,
                             start_iteration=start_iteration, rank=rank, world_size=world_size,
                             num_workers=build_num_workers(config, device_type, world_size=world_size),
                             pin_memory=pin_memory and data_cfg.pin_memory,
                             persistent_workers=data_cfg.persistent_workers)


def build_val_loader(config: Config, dataset, *, rank: int = 0, world_size: int = 1, pin_memory: bool = False,
                     device_type: str = "cpu"):
    """The in-order validation loader used during training (at most 2 workers): this rank's
    shard of the first ``train.val_max_images`` images."""
    from yolact.data.loader import make_val_loader

    num_workers = min(build_num_workers(config, device_type, world_size=world_size), 2)
    return make_val_loader(dataset, num_workers=num_workers, rank=rank, world_size=world_size,
                           max_images=config.train.val_max_images, pin_memory=pin_memory and config.data.pin_memory)


def _check_augment(aug) -> None:
    jitter = aug.scale_jitter
    if jitter is not None and not (len(jitter) == 2 and 0 < jitter[0] <= jitter[1]):
        raise YolactError(f"data.augment.scale_jitter must be [low, high] with 0 < low <= high, "
                          f"got {list(jitter)}")
    for key in ("mosaic_prob", "copy_paste_prob"):
        if not 0.0 <= getattr(aug, key) <= 1.0:
            raise YolactError(f"data.augment.{key} must be in [0, 1], got {getattr(aug, key)}")
    if not 0.0 <= aug.close_mosaic_fraction < 1.0:
        raise YolactError(f"data.augment.close_mosaic_fraction must be in [0, 1), got {aug.close_mosaic_fraction}")
