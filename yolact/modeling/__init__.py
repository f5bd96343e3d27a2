"""The YOLACT network: backbone, FPN, protonet, shared head, semantic head, anchors, and the
conversion to and from the reference's checkpoint layout."""
from yolact.modeling.anchors import AnchorGenerator
from yolact.modeling.backbone import BACKBONES, ResNetBackbone, build_backbone, load_backbone_weights
from yolact.modeling.deform_conv import ModulatedDeformConv2d
from yolact.modeling.fpn import FPN
from yolact.modeling.head import PredictionHead, flatten_dense_predictions
from yolact.modeling.maskiou_head import MaskIoUHead
from yolact.modeling.protonet import Protonet
from yolact.modeling.reference_weights import (
    from_reference_state_dict, is_reference_state_dict, load_model_weights, to_reference_state_dict,
)
from yolact.modeling.semantic_head import SemanticHead
from yolact.modeling.yolact import Yolact, make_yolact

__all__ = [
    "AnchorGenerator", "BACKBONES", "build_backbone", "ResNetBackbone", "load_backbone_weights", "FPN", "PredictionHead",
    "flatten_dense_predictions", "Protonet", "SemanticHead", "Yolact", "make_yolact",
    "from_reference_state_dict", "is_reference_state_dict", "load_model_weights", "to_reference_state_dict",
    "ModulatedDeformConv2d", "MaskIoUHead",
]
