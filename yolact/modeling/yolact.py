"""The YOLACT network: backbone -> FPN -> protonet + shared head (+ semantic head in training)."""
from typing import Dict, Optional, Sequence

import torch
from torch import nn

from yolact.errors import YolactError
from yolact.modeling.anchors import AnchorGenerator
from yolact.modeling.backbone import build_backbone
from yolact.modeling.fpn import FPN
from yolact.modeling.head import PredictionHead
from yolact.modeling.maskiou_head import MaskIoUHead
from yolact.modeling.protonet import Protonet
from yolact.modeling.semantic_head import SemanticHead

__all__ = ["Yolact", "make_yolact"]


class Yolact(nn.Module):
    """YOLACT (Bolya et al. 2019) from injected parts; returns raw outputs, no post-processing.

    Every Conv2d outside the backbone is re-initialised here as in the reference
    (``xavier_uniform_`` weights, zero bias); the backbone keeps its own (ImageNet) weights.

    ``forward(images)`` takes images [N, 3, H, W] float (normalised RGB, SPEC §8; H = W = the
    input size, 550) and returns a dict:

    - ``cls_logits`` [N, A, C+1]: raw class logits, background at index 0 (no softmax here;
      the post-processor applies it);
    - ``box_deltas`` [N, A, 4]: offsets encoded against ``anchors`` (variances 0.1, 0.2);
    - ``mask_coeffs`` [N, A, k]: prototype coefficients in [-1, 1] (tanh);
    - ``prototypes`` [N, Hp, Wp, k]: prototype masks after ReLU, channels last (138x138 at 550);
    - ``anchors`` [A, 4]: (cx, cy, w, h) relative to the image (not clipped), same device and
      dtype as the images, sized against H (the reference's ``max_size``);
    - ``semseg_logits`` [N, C, H3, W3]: per-class semantic logits on P3 (69x69 at 550),
      **in training mode only**.

    Every value is a tensor. YOLACT++'s mask-IoU head (``maskiou_head``, a :class:`MaskIoUHead`
    when built with one: masks [n, 1, Hp, Wp] -> IoU [n, C]) is not run here: it needs the
    matching (training) or the detections (inference) first, so the criterion and the
    post-processor take it as an argument and run it on their masks (``post_forward_heads(model)``
    in ``yolact/modeling/maskiou_head.py`` gives it, DDP-wrapped or not).

    A = 19248 at 550 with 3 anchors per cell; C foreground classes; k prototypes.
    The same keys (minus ``semseg_logits``) are returned in eval mode.

    ``backbone`` is any module mapping images to [C3, C4, C5] (strides 8, 16, 32) whose
    ``out_channels`` gives their channels (the FPN's ``in_channels``).
    """

    def __init__(self, *, backbone: nn.Module, fpn: FPN, protonet: Protonet, head: PredictionHead,
                 semseg_head: SemanticHead, anchor_generator: AnchorGenerator,
                 maskiou_head: Optional[MaskIoUHead] = None):
        super().__init__()
        self.backbone, self.fpn, self.protonet = backbone, fpn, protonet
        self.head, self.semseg_head, self.anchor_generator = head, semseg_head, anchor_generator
        self.maskiou_head = maskiou_head
        self.bn_frozen = False
        self._init_non_backbone_convs()

    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """images [N, 3, H, W] -> raw outputs (see the class docstring for keys and shapes)."""
        features = self.fpn(self.backbone(images))  # [P3, P4, P5, P6, P7]
        prototypes = self.protonet(features[0])
        box_deltas, cls_logits, mask_coeffs = self.head(features)
        anchors = self.anchor_generator([f.shape[-2:] for f in features], input_size=images.shape[-2],
                                        device=images.device, dtype=images.dtype)
        outputs = {"cls_logits": cls_logits, "box_deltas": box_deltas, "mask_coeffs": mask_coeffs,
                   "prototypes": prototypes, "anchors": anchors}
        if self.training:
            outputs["semseg_logits"] = self.semseg_head(features[0])
        return outputs

    def set_bn_frozen(self, frozen: bool = True) -> "Yolact":
        """Freeze (or unfreeze) every BatchNorm2d: eval mode and no gradient for weight/bias.

        The freeze persists: every later ``train()`` re-applies it, as the reference does.
        """
        self.bn_frozen = frozen
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.train(self.training and not frozen)
                for param in (module.weight, module.bias):
                    if param is not None:
                        param.requires_grad_(not frozen)
        return self

    def train(self, mode: bool = True) -> "Yolact":
        """nn.Module.train, then BatchNorm back to eval mode if ``set_bn_frozen(True)`` was called."""
        super().train(mode)
        if self.bn_frozen:
            for module in self.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def _init_non_backbone_convs(self) -> None:
        for name, module in self.named_modules():
            if isinstance(module, nn.Conv2d) and not name.startswith("backbone."):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)


def make_yolact(*, num_classes: int = 80, block: str = "bottleneck", layers: Sequence[int] = (3, 4, 23, 3),
                fpn_channels: int = 256, proto_channels: int = 256, head_channels: int = 256,
                num_prototypes: int = 32, anchor_scales: Sequence[float] = (24, 48, 96, 192, 384),
                anchor_aspect_ratios: Sequence[float] = (1.0, 0.5, 2.0), use_square_anchors: bool = True,
                pretrained: Optional[str] = None, dcn_layers: Sequence[int] = (0, 0, 0, 0),
                dcn_interval: int = 1, anchor_octave_scales: int = 1, use_maskiou: bool = False,
                maskiou_channels: Sequence[int] = (8, 16, 32, 64, 128),
                backbone: Optional[nn.Module] = None) -> Yolact:
    """YOLACT with yolact_base defaults (ResNet-101, 256-channel FPN, k = 32, 550 anchors).

    Args:
        num_classes: foreground classes C (the class layer predicts C+1, semseg C).
        block, layers: the backbone's name in ``BACKBONES`` and its blocks per stage (ResNets:
            see :class:`~yolact.modeling.backbone.ResNetBackbone`).
        fpn_channels, proto_channels, head_channels: widths of the FPN levels, the protonet's
            3x3 convs and the head's upfeature conv.
        num_prototypes: k.
        anchor_scales: one anchor scale in input pixels per level P3..P7.
        anchor_aspect_ratios: aspect ratios per cell, in order.
        use_square_anchors: the reference's square-anchor quirk (default on, SPEC §4).
        pretrained: backbone init: None, "imagenet" or a local file (see ``load_backbone_weights``).
        dcn_layers, dcn_interval: YOLACT++'s deformable blocks (see :class:`ResNetBackbone`).
        anchor_octave_scales: n anchor scales per level, ``scale * 2**(j/n)`` for j = 0..n-1
            (YOLACT++: 3, with ``use_square_anchors=False``: 9 anchors per cell).
        use_maskiou: add YOLACT++'s :class:`MaskIoUHead` with ``maskiou_channels``.
        backbone: a ready backbone module (with ``out_channels``) used instead of ``block``,
            ``layers``, ``pretrained`` and the DCN options.
    """
    if num_classes < 1:
        raise YolactError(f"num_classes must be >= 1, got {num_classes}")
    if len(anchor_scales) != 5:
        raise YolactError(f"anchor_scales needs one scale per level P3..P7 (5), got {list(anchor_scales)}")
    if anchor_octave_scales < 1:
        raise YolactError(f"anchor_octave_scales must be >= 1, got {anchor_octave_scales}")
    if backbone is None:
        backbone = build_backbone(block, layers=layers, pretrained=pretrained, dcn_layers=dcn_layers,
                                  dcn_interval=dcn_interval)
    octave_steps = [2 ** (step / anchor_octave_scales) for step in range(anchor_octave_scales)]
    scales_per_level = [[scale * step for step in octave_steps] for scale in anchor_scales]
    anchor_generator = AnchorGenerator(scales_per_level=scales_per_level,
                                       aspect_ratios=anchor_aspect_ratios,
                                       use_square_anchors=use_square_anchors)
    return Yolact(
        backbone=backbone,
        fpn=FPN(in_channels=backbone.out_channels, out_channels=fpn_channels),
        protonet=Protonet(in_channels=fpn_channels, hidden_channels=proto_channels,
                          num_prototypes=num_prototypes),
        head=PredictionHead(in_channels=fpn_channels, hidden_channels=head_channels,
                            num_classes=num_classes, num_prototypes=num_prototypes,
                            num_anchors=anchor_generator.num_anchors_per_cell),
        semseg_head=SemanticHead(in_channels=fpn_channels, num_classes=num_classes),
        anchor_generator=anchor_generator,
        maskiou_head=MaskIoUHead(num_classes=num_classes, channels=maskiou_channels) if use_maskiou else None,
    )
