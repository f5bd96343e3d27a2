"""YOLACT's training loss: matching, then class, box, mask and semantic terms (SPEC §5, §6)."""
import contextlib
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from yolact.loss.mask_loss import downsample_binary_masks, lincomb_mask_loss
from yolact.loss.maskiou_loss import maskiou_loss, maskiou_samples
from yolact.loss.matcher import match_batch
from yolact.loss.ohem import ohem_classification_loss
from yolact.loss.semseg_loss import semantic_segmentation_loss

__all__ = ["YolactCriterion"]

LOSS_NAMES = ("loss_cls", "loss_box", "loss_mask", "loss_semseg")


def _at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """fp16/bf16 -> float32; float32/float64 unchanged (the loss never runs in half precision)."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def _autocast_off(device: torch.device):
    if torch.is_autocast_enabled(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


class YolactCriterion(nn.Module):
    """The four YOLACT loss terms, weighted and normalised as the reference (SPEC §6.5).

    ``loss_cls``, ``loss_box`` and ``loss_mask`` are divided by the number of positive anchors
    of the whole batch (at least 1: a batch without positives gives zeros for box and mask, and
    its class term is the plain sum over the negatives of its empty images); ``loss_semseg`` is
    divided by the batch size. ``loss_weights`` holds the weight of
    each term, so ``loss / loss_weights[name]`` is the unweighted term.

    Args:
        num_classes: C foreground classes (the logits have C + 1 with background first).
        pos_iou_threshold, neg_iou_threshold, crowd_iou_threshold: matching (SPEC §6.1).
        negpos_ratio: OHEM negatives per positive.
        negatives_per_empty_image: hardest negatives for an image with no non-crowd object
            (the 3:1 rule gives it none; SPEC Decisions 6). Images with objects keep the
            reference's rule. Default 32, about the negatives of a one-object image.
        masks_to_train: at most this many positives per image train the mask branch.
        cls_weight, box_weight, mask_weight, semseg_weight: term weights.
        use_maskiou: YOLACT++: add ``loss_maskiou`` (see ``yolact/loss/maskiou_loss.py``), from
            the model's ``maskiou_head`` output, normalised like the box and mask terms.
        maskiou_weight: its weight (the reference's ``maskiou_alpha``, 25).
        maskiou_min_gt_area: positives whose GT mask covers at most this many prototype
            pixels are left out of it (``discard_mask_area``, 25).
    """

    def __init__(
        self,
        *,
        num_classes: int,
        pos_iou_threshold: float = 0.5,
        neg_iou_threshold: float = 0.4,
        crowd_iou_threshold: float = 0.7,
        negpos_ratio: int = 3,
        negatives_per_empty_image: int = 32,
        masks_to_train: int = 100,
        cls_weight: float = 1.0,
        box_weight: float = 1.5,
        mask_weight: float = 6.125,
        semseg_weight: float = 1.0,
        use_maskiou: bool = False,
        maskiou_weight: float = 25.0,
        maskiou_min_gt_area: float = 25.0,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.pos_iou_threshold = pos_iou_threshold
        self.neg_iou_threshold = neg_iou_threshold
        self.crowd_iou_threshold = crowd_iou_threshold
        self.negpos_ratio = negpos_ratio
        self.negatives_per_empty_image = negatives_per_empty_image
        self.masks_to_train = masks_to_train
        self.loss_weights: Dict[str, float] = dict(zip(LOSS_NAMES, (cls_weight, box_weight, mask_weight,
                                                                    semseg_weight)))
        self.use_maskiou, self.maskiou_min_gt_area = use_maskiou, maskiou_min_gt_area
        if use_maskiou:
            self.loss_weights["loss_maskiou"] = maskiou_weight

    def match(self, targets: Sequence[Dict[str, torch.Tensor]], anchors: torch.Tensor):
        """(conf_t (N, A) int64, idx_t (N, A) int64, loc_t (N, A, 4)) of :func:`match_batch`."""
        return match_batch(
            targets, anchors, pos_iou_threshold=self.pos_iou_threshold,
            neg_iou_threshold=self.neg_iou_threshold, crowd_iou_threshold=self.crowd_iou_threshold,
        )

    def forward(
        self,
        outputs: Dict[str, torch.Tensor],
        targets: Sequence[Dict[str, torch.Tensor]],
        generator: Optional[torch.Generator] = None,
    ) -> Dict[str, torch.Tensor]:
        """Compute the weighted, normalised loss terms.

        Args:
            outputs: ``cls_logits`` (N, A, C+1) raw, background first; ``box_deltas`` (N, A, 4);
                ``mask_coeffs`` (N, A, k) tanh'd; ``prototypes`` (N, Hp, Wp, k) ReLU'd;
                ``anchors`` (A, 4) cxcywh relative; ``semseg_logits`` (N, C, H3, W3).
            targets: N dicts: ``boxes`` (n, 4) float xyxy relative to the network input,
                ``labels`` (n,) int64 in [0, C), ``masks`` (n, H, W) uint8 at the input size,
                ``crowd_boxes`` (m, 4) float xyxy relative (optional; other keys are ignored).
            generator: torch.Generator for the masks_to_train subset (None = global RNG).
        Returns:
            ``loss_cls``, ``loss_box``, ``loss_mask``, ``loss_semseg``: scalar tensors; with
            ``use_maskiou`` also ``loss_maskiou`` (needs ``outputs["maskiou_head"]``).
        """
        self._check_class_count(outputs)
        device = outputs["cls_logits"].device
        with _autocast_off(device):
            # the maskiou_head output (YOLACT++) is a module, not a tensor
            outputs = {k: _at_least_float32(v) if torch.is_tensor(v) else v for k, v in outputs.items()}
            return self._losses(outputs, targets, generator)

    def _check_class_count(self, outputs: Dict[str, torch.Tensor]) -> None:
        num_logits, num_semseg = outputs["cls_logits"].shape[-1], outputs["semseg_logits"].shape[1]
        if num_logits != self.num_classes + 1 or num_semseg != self.num_classes:
            raise ValueError(
                f"the criterion has {self.num_classes} classes but the model gives {num_logits} class "
                f"logits (expected {self.num_classes + 1}, background first) and {num_semseg} semantic "
                f"channels (expected {self.num_classes})"
            )

    def _losses(self, outputs, targets, generator) -> Dict[str, torch.Tensor]:
        cls_logits, box_deltas = outputs["cls_logits"], outputs["box_deltas"]
        conf_t, idx_t, loc_t = self.match(targets, outputs["anchors"])
        positives = conf_t > 0  # (N, A)
        # Positives of the whole batch; at least 1 so that a batch without any stays finite.
        num_pos = positives.sum().clamp(min=1).to(cls_logits.dtype)
        is_empty_image = torch.tensor([t["boxes"].shape[0] == 0 for t in targets], device=cls_logits.device)

        loss_cls = ohem_classification_loss(
            cls_logits, conf_t, negpos_ratio=self.negpos_ratio,
            negatives_per_empty_image=self.negatives_per_empty_image, is_empty_image=is_empty_image,
        )
        loss_box = F.smooth_l1_loss(box_deltas[positives], loc_t[positives], reduction="sum", beta=1.0)
        loss_mask, loss_semseg = self._mask_losses(outputs, targets, conf_t, idx_t, generator)

        weights = self.loss_weights
        losses = {
            "loss_cls": loss_cls * weights["loss_cls"] / num_pos,
            "loss_box": loss_box * weights["loss_box"] / num_pos,
            "loss_mask": loss_mask * weights["loss_mask"] / num_pos,
            "loss_semseg": loss_semseg * weights["loss_semseg"] / len(targets),
        }
        if self.use_maskiou:
            samples = maskiou_samples(outputs["prototypes"], outputs["mask_coeffs"], conf_t, idx_t, targets,
                                      min_gt_area=self.maskiou_min_gt_area,
                                      masks_to_train=self.masks_to_train, generator=generator)
            loss_maskiou = maskiou_loss(outputs["maskiou_head"], samples)
            losses["loss_maskiou"] = loss_maskiou * weights["loss_maskiou"] / num_pos
        return losses

    def _mask_losses(self, outputs, targets, conf_t, idx_t, generator):
        """Unnormalised lincomb mask loss and semantic loss (divided by H3*W3 only)."""
        prototypes, semseg_logits = outputs["prototypes"], outputs["semseg_logits"]
        device, dtype = prototypes.device, prototypes.dtype
        # The GT of the whole batch, image after image.
        gt_counts = torch.tensor([t["boxes"].shape[0] for t in targets], device=device)  # (N,)
        gt_offsets = torch.cumsum(gt_counts, dim=0) - gt_counts  # (N,) first GT row of each image
        gt_image_index = torch.repeat_interleave(torch.arange(len(targets), device=device), gt_counts)
        gt_boxes = torch.cat([t["boxes"].to(device=device, dtype=dtype) for t in targets])  # (G, 4)
        gt_labels = torch.cat([t["labels"].to(device=device, dtype=torch.int64) for t in targets])  # (G,)
        # One conversion of all the masks, downsampled once per output size.
        gt_masks = torch.cat([t["masks"].to(device) for t in targets])  # (G, H, W)
        proto_masks = downsample_binary_masks(gt_masks, tuple(prototypes.shape[1:3]), dtype)
        semseg_masks = downsample_binary_masks(gt_masks, tuple(semseg_logits.shape[2:]), dtype)

        loss_mask = lincomb_mask_loss(
            prototypes, outputs["mask_coeffs"], conf_t, idx_t, gt_boxes, proto_masks, gt_offsets,
            masks_to_train=self.masks_to_train, generator=generator,
        )
        loss_semseg = semantic_segmentation_loss(semseg_logits, semseg_masks, gt_labels, gt_image_index)
        return loss_mask, loss_semseg
