"""The one place that reads a :class:`~yolact.config.Config` and builds the parts from it.

Every module below takes plain keyword arguments; these builders translate config keys into
those arguments, so a user of the library can also skip the config and call the modules.
"""
import dataclasses
from pathlib import Path
from typing import Optional

from yolact.config import Config

__all__ = ["build_model", "build_criterion", "build_postprocessor", "build_dataset", "with_num_classes"]


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
        score_threshold=score_threshold,
        rescore_mask=post_cfg.rescore_mask and config.model.use_maskiou,
    )


def build_dataset(config: Config, split: str, *, train_transform: Optional[bool] = None):
    """The ``"train"`` or ``"val"`` dataset of ``config``, with the matching transform."""
    from yolact.data.coco import CocoInstanceDataset
    from yolact.data.transforms import EvalTransform, TrainTransform

    data_cfg = config.data
    image_dir, annotations = ((data_cfg.train_images, data_cfg.train_annotations) if split == "train"
                              else (data_cfg.val_images, data_cfg.val_annotations))
    augment = split == "train" if train_transform is None else train_transform
    if augment:
        aug = data_cfg.augment
        transform = TrainTransform(input_size=config.model.input_size, photometric=aug.photometric,
                                   expand=aug.expand, random_crop=aug.random_crop, mirror=aug.mirror,
                                   min_box_size=aug.min_box_size)
    else:
        transform = EvalTransform(input_size=config.model.input_size)
    # Evaluation keeps images without objects: their false positives count, as in COCOeval.
    keep_empty = data_cfg.keep_empty if split == "train" else True
    return CocoInstanceDataset(Path(image_dir), Path(annotations), transform=transform, keep_empty=keep_empty)
