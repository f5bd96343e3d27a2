"""YOLACT's training loss: matching, then class, box, mask and semantic terms (SPEC §5, §6)."""
import contextlib
from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from yolact.loss.batch_targets import ConcatenatedTargets, concatenate_targets
from yolact.loss.mask_loss import downsample_binary_masks, positive_mask_loss, positive_masks
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
            the model's mask-IoU head passed to ``forward``, normalised like the box and mask
            terms, on the very samples of ``loss_mask``.
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
        *,
        maskiou_head: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
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
            maskiou_head: with ``use_maskiou``, the model's mask-IoU head (masks (P, 1, Hp, Wp)
                -> IoU (P, C)), run here on the kept positives' masks; under DDP, the bare
                model's head (its parameters are the wrapped model's, reduced as usual).
        Returns:
            ``loss_cls``, ``loss_box``, ``loss_mask``, ``loss_semseg``: scalar tensors; with
            ``use_maskiou`` also ``loss_maskiou``.
        """
        self._check_class_count(outputs)
        if self.use_maskiou and maskiou_head is None:
            raise ValueError("use_maskiou needs the model's head: criterion(outputs, targets, "
                             "maskiou_head=model.maskiou_head)")
        device = outputs["cls_logits"].device
        with _autocast_off(device):
            outputs = {k: _at_least_float32(v) for k, v in outputs.items()}
            return self._losses(outputs, targets, generator, maskiou_head)

    def _check_class_count(self, outputs: Dict[str, torch.Tensor]) -> None:
        num_logits, num_semseg = outputs["cls_logits"].shape[-1], outputs["semseg_logits"].shape[1]
        if num_logits != self.num_classes + 1 or num_semseg != self.num_classes:
            raise ValueError(
                f"the criterion has {self.num_classes} classes but the model gives {num_logits} class "
                f"logits (expected {self.num_classes + 1}, background first) and {num_semseg} semantic "
                f"channels (expected {self.num_classes})"
            )

    def _losses(self, outputs, targets, generator, maskiou_head) -> Dict[str, torch.Tensor]:
        """The weighted, normalised terms. Sizes come from shapes, never from tensor values, but
        for one read of the positives per image in the mask term: a CUDA step waits once."""
        cls_logits = outputs["cls_logits"]
        gt = concatenate_targets(targets, device=cls_logits.device, dtype=outputs["prototypes"].dtype)
        conf_t, idx_t, loc_t = self.match(targets, outputs["anchors"])
        positives = conf_t > 0  # (N, A)
        # Positives of the whole batch; at least 1 so that a batch without any stays finite.
        num_pos = positives.sum().clamp(min=1).to(cls_logits.dtype)

        unnormalised = {
            "loss_cls": ohem_classification_loss(
                cls_logits, conf_t, negpos_ratio=self.negpos_ratio,
                negatives_per_empty_image=self.negatives_per_empty_image, is_empty_image=gt.counts == 0,
            ),
            "loss_box": self._box_loss(outputs["box_deltas"], loc_t, positives),
            **self._mask_losses(outputs, gt, conf_t, idx_t, generator, maskiou_head),
        }
        normalisers = {"loss_cls": num_pos, "loss_box": num_pos, "loss_mask": num_pos, "loss_semseg": len(targets)}
        if self.use_maskiou:  # YOLACT++: normalised by the batch's positives like the box and mask terms
            normalisers["loss_maskiou"] = num_pos
        # A further term joins `unnormalised`, `normalisers` and `loss_weights`.
        return {name: unnormalised[name] * weight / normalisers[name] for name, weight in self.loss_weights.items()}

    @staticmethod
    def _box_loss(box_deltas: torch.Tensor, loc_t: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        """Smooth-L1 (beta 1) summed over the positives: (N, A, 4), (N, A, 4), (N, A) -> scalar.

        Computed at every anchor and zeroed off the positives (``where``, so neither the value
        nor the gradient of another anchor can leak in) instead of indexing with the mask.
        """
        per_anchor = F.smooth_l1_loss(box_deltas, loc_t, reduction="none", beta=1.0).sum(dim=-1)  # (N, A)
        return torch.where(positives, per_anchor, 0.0).sum()

    def _mask_losses(self, outputs, gt: ConcatenatedTargets, conf_t, idx_t, generator,
                     maskiou_head) -> Dict[str, torch.Tensor]:
        """``loss_mask`` (lincomb), ``loss_semseg`` (divided by H3*W3 only) and, with ``use_maskiou``,
        ``loss_maskiou`` on the same kept positives and masks; unweighted, unnormalised."""
        prototypes, semseg_logits = outputs["prototypes"], outputs["semseg_logits"]
        dtype = prototypes.dtype
        # One conversion of all the masks, downsampled once per output size.
        proto_masks = downsample_binary_masks(gt.masks, tuple(prototypes.shape[1:3]), dtype)
        semseg_masks = downsample_binary_masks(gt.masks, tuple(semseg_logits.shape[2:]), dtype)

        positive = positive_masks(prototypes, outputs["mask_coeffs"], conf_t, idx_t, gt.boxes, proto_masks,
                                  gt.offsets, masks_to_train=self.masks_to_train, generator=generator)
        loss_semseg = semantic_segmentation_loss(semseg_logits, semseg_masks, gt.labels, gt.image_index)
        losses = {"loss_mask": positive_mask_loss(positive), "loss_semseg": loss_semseg}
        if self.use_maskiou:
            samples = maskiou_samples(positive, gt.labels, min_gt_area=self.maskiou_min_gt_area)
            losses["loss_maskiou"] = maskiou_loss(maskiou_head, samples)
        return losses
