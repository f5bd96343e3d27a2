"""YOLACT's training loss (SPEC §5, §6): matching, OHEM classification, box, mask, semantic."""
from yolact.loss.criterion import YolactCriterion
from yolact.loss.mask_loss import (KeptPositives, PositiveMasks, assemble_cropped_masks, downsample_binary_masks,
                                   kept_positives, lincomb_mask_loss, positive_mask_loss, positive_masks)
from yolact.loss.maskiou_loss import MaskIoUSamples, maskiou_loss, maskiou_samples
from yolact.loss.matcher import intersection_over_area, match_anchors, match_batch, match_padded
from yolact.loss.ohem import background_loss, ohem_classification_loss, select_hard_negatives
from yolact.loss.semseg_loss import semantic_segmentation_loss, semantic_segmentation_targets

__all__ = [
    "YolactCriterion",
    "match_anchors",
    "match_batch",
    "match_padded",
    "intersection_over_area",
    "background_loss",
    "select_hard_negatives",
    "ohem_classification_loss",
    "downsample_binary_masks",
    "lincomb_mask_loss",
    "KeptPositives",
    "kept_positives",
    "assemble_cropped_masks",
    "PositiveMasks",
    "positive_masks",
    "positive_mask_loss",
    "semantic_segmentation_loss",
    "semantic_segmentation_targets",
    "MaskIoUSamples",
    "maskiou_samples",
    "maskiou_loss",
]
