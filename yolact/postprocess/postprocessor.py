"""YOLACT inference post-processing: raw network outputs -> detections per image (SPEC §7).

``YolactPostProcessor(outputs, image_sizes)`` runs two steps that can also be called alone:
``detect`` (softmax'd scores -> candidates above the confidence threshold -> NMS, all in
relative coordinates, the reference's ``Detect``) and ``to_image`` (pixel boxes and full-size
masks at the original image size, the reference's ``postprocess``).
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from yolact.box_ops import decode_boxes
from yolact.postprocess.fast_nms import cross_class_fast_nms, fast_nms
from yolact.postprocess.mask_assembly import (INTERPOLATIONS, assemble_masks, encode_masks_rle,
                                             mask_probabilities)
from yolact.postprocess.standard_nms import standard_nms

__all__ = ["NMS_METHODS", "MASK_FORMATS", "YolactPostProcessor", "select_candidates", "pixel_boxes"]

# YOLACT++'s mask-IoU head as the re-scoring calls it: masks (K, 1, Hp, Wp) -> IoU (K, C)
MaskIoUHeadFn = Callable[[torch.Tensor], torch.Tensor]

NMS_METHODS = ("fast", "cross_class", "standard")
MASK_FORMATS = ("bool", "rle", "none")


def select_candidates(class_probs: torch.Tensor, boxes: torch.Tensor, mask_coeffs: torch.Tensor,
                      conf_threshold: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The anchors whose best foreground class probability is > ``conf_threshold`` (strict).

    Args:
        class_probs: (A, C+1) softmax probabilities, column 0 background.
        boxes: (A, 4) decoded xyxy, relative.
        mask_coeffs: (A, k).
    Returns:
        boxes (n, 4), foreground scores (C, n) (class-major, as the NMS functions take them),
        mask_coeffs (n, k) of the n kept anchors.
    """
    scores = class_probs[:, 1:].T  # (C, A)
    keep = scores.max(dim=0).values > conf_threshold  # (A,)
    return boxes[keep], scores[:, keep], mask_coeffs[keep]


def pixel_boxes(boxes: torch.Tensor, image_size: Tuple[int, int]) -> torch.Tensor:
    """Relative xyxy (K, 4) -> float32 pixel xyxy of an (h, w) image, ordered and clamped to
    [0, w] x [0, h]. The reference truncates these to integers afterwards; we keep floats."""
    height, width = image_size
    scale = boxes.new_tensor([width, height, width, height])
    scaled = boxes * scale
    top_left = torch.minimum(scaled[:, :2], scaled[:, 2:])
    bottom_right = torch.maximum(scaled[:, :2], scaled[:, 2:])
    upper = scale[:2]
    return torch.cat([torch.minimum(top_left.clamp(min=0), upper),
                      torch.minimum(bottom_right.clamp(min=0), upper)], dim=1).float()


class YolactPostProcessor(nn.Module):
    """Raw YOLACT outputs -> per-image detections at the original image size.

    Args:
        conf_threshold: an anchor is a candidate when its best class probability is > this.
        nms_threshold: IoU above which a box is suppressed.
        top_k: candidates per class entering NMS (all classes share it for Fast NMS).
        max_detections: cap after NMS ("fast" and "standard"; the reference's cross-class NMS
            has no cap and returns up to ``top_k``).
        nms_method: "fast" (per-class Fast NMS, the reference's default), "cross_class" (the
            reference's cc_fast_nms) or "standard" (torchvision's per-class NMS, with the
            per-class > conf_threshold filter and the top_k per class before it).
        mask_threshold: a mask pixel is on when its resized probability is > this.
        mask_interpolation: "probability" (the reference) resizes the probabilities, "logit"
            the logits (then a pixel is on where sigmoid(resized logit) > ``mask_threshold``;
            see ``assemble_masks``).
        crop_at_image_size: also cut each full-size mask at its box at the image's resolution
            (the reference crops at prototype resolution only; see ``assemble_masks``).
        score_threshold: detections scoring <= this are dropped after NMS when it is > 0 (a
            display/eval filter; 0 keeps everything, as for COCO eval).
        mask_chunk_size: detections whose masks are assembled together: the float temporaries
            (and, for "rle", the full-size masks) never hold more than this many.
        rescore_mask: YOLACT++: each detection also gets ``mask_scores`` = its score times the
            IoU that the model's mask-IoU head (passed to ``forward``) predicts for its cropped
            soft mask at its class (the reference's ``rescore_mask``, box re-scoring off:
            ``scores`` and the order stay; COCO's "segm" results and drawings use ``mask_scores``).
        maskness_rescore: ``mask_scores`` (after ``rescore_mask``, else ``scores``) are also
            multiplied by each mask's maskness (:meth:`rescore_by_maskness`, SOLOv2's), with no
            head to train.
    """

    def __init__(self, *, conf_threshold: float = 0.05, nms_threshold: float = 0.5, top_k: int = 200,
                 max_detections: int = 100, nms_method: str = "fast", mask_threshold: float = 0.5,
                 score_threshold: float = 0.0, mask_chunk_size: int = 16, rescore_mask: bool = False,
                 crop_at_image_size: bool = False, maskness_rescore: bool = False,
                 mask_interpolation: str = "probability"):
        super().__init__()
        if nms_method not in NMS_METHODS:
            raise ValueError(f"nms_method must be one of {list(NMS_METHODS)}, got {nms_method!r}")
        if mask_interpolation not in INTERPOLATIONS:
            raise ValueError(f"mask_interpolation must be one of {list(INTERPOLATIONS)}, "
                             f"got {mask_interpolation!r}")
        if mask_chunk_size < 1:
            raise ValueError(f"mask_chunk_size must be >= 1, got {mask_chunk_size}")
        self.conf_threshold = conf_threshold
        self.nms_threshold = nms_threshold
        self.top_k = top_k
        self.max_detections = max_detections
        self.nms_method = nms_method
        self.mask_threshold = mask_threshold
        self.score_threshold = score_threshold
        self.mask_chunk_size = mask_chunk_size
        self.rescore_mask = rescore_mask
        self.crop_at_image_size = crop_at_image_size
        self.maskness_rescore = maskness_rescore
        self.mask_interpolation = mask_interpolation

    @torch.no_grad()
    def forward(self, outputs: Dict[str, torch.Tensor], image_sizes: Sequence[Tuple[int, int]],
                mask_format: str = "bool", *, maskiou_head: Optional[MaskIoUHeadFn] = None
                ) -> List[Dict[str, object]]:
        """Detections of each image.

        Args:
            outputs: the model's eval outputs: ``cls_logits`` (N, A, C+1) raw logits, column 0
                background; ``box_deltas`` (N, A, 4); ``mask_coeffs`` (N, A, k);
                ``prototypes`` (N, Hp, Wp, k); ``anchors`` (A, 4) cxcywh relative.
            image_sizes: N pairs (h, w), the original image sizes.
            mask_format: "bool", "rle" or "none" (see :meth:`to_image`).
            maskiou_head: the model's mask-IoU head, needed with ``rescore_mask`` (see
                :meth:`rescore`; ``post_forward_heads(model)`` gives it).
        Returns:
            N dicts (see :meth:`to_image`), detections ranked by descending score.
        """
        if self.rescore_mask and maskiou_head is None:
            raise ValueError("rescore_mask needs the model's head: postprocessor(outputs, image_sizes, "
                             "maskiou_head=model.maskiou_head)")
        class_probs = outputs["cls_logits"].softmax(dim=-1)
        detections = self.detect(class_probs, outputs["box_deltas"], outputs["mask_coeffs"],
                                 outputs["anchors"])
        if self.rescore_mask:
            detections = [self.rescore(found, prototypes, maskiou_head)
                          for found, prototypes in zip(detections, outputs["prototypes"])]
        if self.maskness_rescore:
            detections = [self.rescore_by_maskness(found, prototypes)
                          for found, prototypes in zip(detections, outputs["prototypes"])]
        return [self.to_image(found, prototypes, size, mask_format)
                for found, prototypes, size in zip(detections, outputs["prototypes"], image_sizes)]

    @torch.no_grad()
    def detect(self, class_probs: torch.Tensor, box_deltas: torch.Tensor, mask_coeffs: torch.Tensor,
               anchors: torch.Tensor) -> List[Dict[str, torch.Tensor]]:
        """Candidates and NMS per image, in coordinates relative to the network input.

        Args:
            class_probs: (N, A, C+1) softmax probabilities, column 0 background.
            box_deltas: (N, A, 4); mask_coeffs: (N, A, k); anchors: (A, 4) cxcywh relative.
        Returns:
            N dicts: ``boxes`` (K, 4) xyxy relative (not clipped), ``labels`` int64 (K,) 0-based,
            ``scores`` (K,) descending, ``mask_coeffs`` (K, k). K = 0 when nothing passes.
        """
        return [self._detect_per_image(probs, decode_boxes(deltas, anchors), coeffs)
                for probs, deltas, coeffs in zip(class_probs, box_deltas, mask_coeffs)]

    def _detect_per_image(self, class_probs: torch.Tensor, boxes: torch.Tensor,
                          mask_coeffs: torch.Tensor) -> Dict[str, torch.Tensor]:
        boxes, scores, mask_coeffs = select_candidates(class_probs, boxes, mask_coeffs, self.conf_threshold)
        if self.nms_method == "fast":
            found = fast_nms(boxes, scores, mask_coeffs, iou_threshold=self.nms_threshold, top_k=self.top_k,
                             max_detections=self.max_detections)
        elif self.nms_method == "cross_class":
            found = cross_class_fast_nms(boxes, scores, mask_coeffs, iou_threshold=self.nms_threshold,
                                         top_k=self.top_k)
        else:
            found = standard_nms(boxes, scores, mask_coeffs, iou_threshold=self.nms_threshold,
                                 conf_threshold=self.conf_threshold, top_k=self.top_k,
                                 max_detections=self.max_detections)
        found = {key: found[key] for key in ("boxes", "labels", "scores", "mask_coeffs")}
        if self.score_threshold > 0:
            keep = found["scores"] > self.score_threshold
            found = {key: value[keep] for key, value in found.items()}
        return found

    @torch.no_grad()
    def rescore(self, detections: Dict[str, torch.Tensor], prototypes: torch.Tensor,
                maskiou_head: MaskIoUHeadFn) -> Dict[str, torch.Tensor]:
        """A dict of :meth:`detect` plus ``maskiou`` (K,), the IoU predicted by ``maskiou_head``
        (masks (n, 1, Hp, Wp) -> (n, C)) for each cropped soft mask at prototype resolution at its
        class, and ``mask_scores`` (K,) = ``scores * maskiou``."""
        masks = mask_probabilities(prototypes, detections["mask_coeffs"], detections["boxes"])  # (K, Hp, Wp)
        predicted = maskiou_head(masks[:, None])  # (K, C)
        maskiou = predicted.gather(1, detections["labels"].long()[:, None])[:, 0]  # (K,)
        return {**detections, "maskiou": maskiou, "mask_scores": detections["scores"] * maskiou}

    @torch.no_grad()
    def rescore_by_maskness(self, detections: Dict[str, torch.Tensor],
                            prototypes: torch.Tensor) -> Dict[str, torch.Tensor]:
        """A dict of :meth:`detect` (or :meth:`rescore`) plus ``maskness`` (K,): the mean probability of
        each cropped soft mask over its prototype pixels above ``mask_threshold`` (0 when none is),
        and ``mask_scores`` (K,) multiplied by it (``scores * maskness`` without :meth:`rescore`)."""
        masks = mask_probabilities(prototypes, detections["mask_coeffs"], detections["boxes"])  # (K, Hp, Wp)
        on = masks > self.mask_threshold
        maskness = (masks * on).sum(dim=(1, 2)) / on.sum(dim=(1, 2)).clamp(min=1)  # (K,)
        base = detections.get("mask_scores", detections["scores"])
        return {**detections, "maskness": maskness, "mask_scores": base * maskness}

    @torch.no_grad()
    def to_image(self, detections: Dict[str, torch.Tensor], prototypes: torch.Tensor,
                 image_size: Tuple[int, int], mask_format: str = "bool") -> Dict[str, object]:
        """One image's relative detections -> pixel boxes and full-size masks.

        Args:
            detections: a dict of :meth:`detect`.
            prototypes: (Hp, Wp, k) the image's prototypes.
            image_size: (h, w) of the original image.
            mask_format: "bool": ``masks`` bool (K, h, w); "rle": ``masks`` a list of K
                pycocotools RLE dicts ``{"size": [h, w], "counts": str}``, encoded chunk by
                chunk; "none": no ``masks`` key (detection only).
        Returns:
            ``boxes`` float32 (K, 4) xyxy pixels of the original image, clamped to the image;
            ``labels`` int64 (K,) 0-based foreground class; ``scores`` float32 (K,); ``masks``;
            ``mask_scores`` float32 (K,) when the detections were re-scored (:meth:`rescore`,
            :meth:`rescore_by_maskness`).
        """
        if mask_format not in MASK_FORMATS:
            raise ValueError(f"mask_format must be one of {list(MASK_FORMATS)}, got {mask_format!r}")
        image_size = (int(image_size[0]), int(image_size[1]))
        result: Dict[str, object] = {"boxes": pixel_boxes(detections["boxes"], image_size),
                                     "labels": detections["labels"].long(),
                                     "scores": detections["scores"].float()}
        if "mask_scores" in detections:
            result["mask_scores"] = detections["mask_scores"].float()
        if mask_format == "none":
            return result
        build = assemble_masks if mask_format == "bool" else encode_masks_rle
        result["masks"] = build(prototypes, detections["mask_coeffs"], detections["boxes"], image_size,
                                threshold=self.mask_threshold, chunk_size=self.mask_chunk_size,
                                crop_at_image_size=self.crop_at_image_size,
                                interpolate=self.mask_interpolation)
        return result
