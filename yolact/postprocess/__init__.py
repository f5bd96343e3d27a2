"""Inference post-processing: candidates, Fast/standard NMS, mask assembly (SPEC §7)."""
from yolact.postprocess.fast_nms import cross_class_fast_nms, fast_nms, max_iou_with_higher_scored
from yolact.postprocess.mask_assembly import (assemble_masks, encode_masks_rle, linear_taps, mask_logits,
                                             mask_probabilities)
from yolact.postprocess.postprocessor import YolactPostProcessor, pixel_boxes, select_candidates
from yolact.postprocess.standard_nms import standard_nms

__all__ = [
    "YolactPostProcessor",
    "select_candidates",
    "pixel_boxes",
    "fast_nms",
    "cross_class_fast_nms",
    "max_iou_with_higher_scored",
    "standard_nms",
    "assemble_masks",
    "encode_masks_rle",
    "linear_taps",
    "mask_logits",
    "mask_probabilities",
]
