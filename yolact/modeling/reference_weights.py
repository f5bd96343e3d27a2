"""Our state_dict layout <-> the reference's (SPEC §1-§5, §10), and a checked weight loader.

Key mapping (ours -> reference); every other key (``backbone.conv1.*``, ``backbone.bn1.*``)
is the same in both:

=============================  ======================================
ours                           reference
=============================  ======================================
``backbone.layer{s+1}.``       ``backbone.layers.{s}.``       (s = 0..3)
``fpn.lateral_convs.{i}.``     ``fpn.lat_layers.{2-i}.``      (ours fine to coarse: 0 = C3)
``fpn.output_convs.{i}.``      ``fpn.pred_layers.{2-i}.``     (0 = P3)
``fpn.downsample_convs.{i}.``  ``fpn.downsample_layers.{i}.`` (0 = P6)
``protonet.layers.``           ``proto_net.``                 (same Sequential indices)
``head.upfeature.``            ``prediction_layers.0.upfeature.0.``
``head.box_layer.``            ``prediction_layers.0.bbox_layer.``
``head.cls_layer.``            ``prediction_layers.0.conf_layer.``
``head.coeff_layer.``          ``prediction_layers.0.mask_layer.``
``semseg_head.conv.``          ``semantic_seg_conv.``
``maskiou_head.layers.``       ``maskiou_net.maskiou_net.``   (YOLACT++; same indices)
=============================  ======================================

YOLACT++'s deformable convs keep DCNv2's names under the renamed stage prefix:
``backbone.layer{s+1}.{b}.conv2.{weight,bias,conv_offset_mask.weight,conv_offset_mask.bias}``
<-> ``backbone.layers.{s}.{b}.conv2.*``.
"""
import logging
from typing import Dict, List, Mapping, Tuple

import torch
from torch import nn

from yolact.errors import YolactError

__all__ = [
    "to_reference_state_dict", "from_reference_state_dict", "is_reference_state_dict", "load_model_weights",
    "CLASS_DEPENDENT_PREFIXES",
]

logger = logging.getLogger("yolact")

# (our prefix, the reference's prefix)
_PREFIX_PAIRS: Tuple[Tuple[str, str], ...] = (
    *((f"backbone.layer{s + 1}.", f"backbone.layers.{s}.") for s in range(4)),
    *((f"fpn.lateral_convs.{i}.", f"fpn.lat_layers.{2 - i}.") for i in range(3)),
    *((f"fpn.output_convs.{i}.", f"fpn.pred_layers.{2 - i}.") for i in range(3)),
    *((f"fpn.downsample_convs.{i}.", f"fpn.downsample_layers.{i}.") for i in range(2)),
    ("protonet.layers.", "proto_net."),
    ("head.upfeature.", "prediction_layers.0.upfeature.0."),
    ("head.box_layer.", "prediction_layers.0.bbox_layer."),
    ("head.cls_layer.", "prediction_layers.0.conf_layer."),
    ("head.coeff_layer.", "prediction_layers.0.mask_layer."),
    ("semseg_head.conv.", "semantic_seg_conv."),
    ("maskiou_head.layers.", "maskiou_net.maskiou_net."),
)

# prefixes that only the reference's layout has
_REFERENCE_ONLY_PREFIXES = (
    "backbone.layers.", "fpn.lat_layers.", "fpn.pred_layers.", "fpn.downsample_layers.", "proto_net.",
    "prediction_layers.", "semantic_seg_conv.", "maskiou_net.",
)

# tensors whose shape depends on the class count (our names): re-initialised on fine-tuning
CLASS_DEPENDENT_PREFIXES = ("head.cls_layer.", "semseg_head.conv.", "maskiou_head.layers.")

_NUM_FPN_DOWNSAMPLE = 2  # yolact_base's fpn.num_downsample


def _rename(key: str, reference_to_ours: bool) -> str:
    for ours, reference in _PREFIX_PAIRS:
        source, target = (reference, ours) if reference_to_ours else (ours, reference)
        if key.startswith(source):
            return target + key[len(source):]
    return key


def is_reference_state_dict(state: Mapping[str, torch.Tensor]) -> bool:
    """True when ``state`` uses the reference's key names (e.g. ``proto_net.0.weight``)."""
    return any(key.startswith(_REFERENCE_ONLY_PREFIXES) for key in state)


def to_reference_state_dict(our_state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our model's state_dict -> the reference's key names (same tensors, same order).

    ``num_batches_tracked`` entries are kept: the reference's model under a current PyTorch has
    them, and a plain dict without them also loads there (BatchNorm fills them in).
    """
    return {_rename(key, reference_to_ours=False): tensor for key, tensor in our_state.items()}


def from_reference_state_dict(ref_state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The reference's state_dict (e.g. ``yolact_base_54_800000.pth``) -> our key names.

    Applies the reference's own legacy filters (SPEC §10): keys starting with
    ``backbone.layer`` but not ``backbone.layers`` are dropped, and so are
    ``fpn.downsample_layers.N`` for N >= 2. A BatchNorm without ``num_batches_tracked`` (old
    checkpoints) gets a zero counter, so the result loads strictly into our model.
    """
    converted = {}
    for key, tensor in ref_state.items():
        if key.startswith("backbone.layer") and not key.startswith("backbone.layers"):
            continue
        if key.startswith("fpn.downsample_layers.") and int(key.split(".")[2]) >= _NUM_FPN_DOWNSAMPLE:
            continue
        converted[_rename(key, reference_to_ours=True)] = tensor
    return _with_num_batches_tracked(converted)


def _with_num_batches_tracked(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    for key in [k for k in state if k.endswith(".running_mean")]:
        counter_key = key[: -len("running_mean")] + "num_batches_tracked"
        if counter_key not in state:
            state[counter_key] = torch.tensor(0, dtype=torch.long)
    return state


def _strip_module_prefix(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Drop the ``module.`` prefix of a (Distributed)DataParallel state_dict."""
    if state and all(key.startswith("module.") for key in state):
        return {key[len("module."):]: tensor for key, tensor in state.items()}
    return dict(state)


def load_model_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> List[str]:
    """Load our or the reference's state_dict into ``model`` (a :class:`Yolact`), strictly.

    The one tolerated difference is the class count: class-dependent tensors (the head's class
    layer and the semantic head's conv) whose shape differs are left at the model's fresh init,
    with one ``logging.getLogger("yolact")`` line per layer. Any other mismatch (a missing or
    unexpected key, another shape) raises :class:`YolactError` naming the first bad key (in the
    checkpoint's own layout) and the shapes. A ``module.`` prefix (DDP) is accepted.

    Returns:
        our names of the re-initialised tensors (empty when everything was loaded).
    """
    state = _strip_module_prefix(state_dict)
    reference = is_reference_state_dict(state)
    state = from_reference_state_dict(state) if reference else _with_num_batches_tracked(state)
    own_state = model.state_dict()
    _check_key_sets(state, own_state, reference)
    checkpoint_shapes = _class_count_mismatches(state, own_state, reference)
    for key in checkpoint_shapes:
        state[key] = own_state[key]  # keep the fresh init of the class-dependent tensor
    model.load_state_dict(state, strict=True)
    for key, shape in checkpoint_shapes.items():
        if key.endswith(".weight"):
            logger.info(f"re-initialised {key[: -len('.weight')]}: the checkpoint's "
                        f"{_checkpoint_name(key, reference)} is {list(shape)}, the model's "
                        f"{list(own_state[key].shape)} (another class count)")
    return list(checkpoint_shapes)


def _checkpoint_name(our_key: str, reference: bool) -> str:
    return _rename(our_key, reference_to_ours=False) if reference else our_key


def _check_key_sets(state: Mapping[str, torch.Tensor], own_state: Mapping[str, torch.Tensor],
                    reference: bool) -> None:
    missing = [key for key in own_state if key not in state]
    unexpected = [key for key in state if key not in own_state]
    if not (missing or unexpected):
        return
    if missing:
        key, shape, side = missing[0], own_state[missing[0]].shape, "missing from the checkpoint"
    else:
        key, shape, side = unexpected[0], state[unexpected[0]].shape, "not in the model"
    raise YolactError(f"checkpoint does not fit the model: {_checkpoint_name(key, reference)} {list(shape)} "
                      f"is {side} ({len(missing)} missing, {len(unexpected)} unexpected keys; "
                      f"another architecture?)")


def _class_count_mismatches(state: Mapping[str, torch.Tensor], own_state: Mapping[str, torch.Tensor],
                            reference: bool) -> Dict[str, Tuple[int, ...]]:
    """Our key -> the checkpoint's shape, for class-dependent tensors of another class count."""
    mismatches = {}
    for key, tensor in state.items():
        own_shape, shape = tuple(own_state[key].shape), tuple(tensor.shape)
        if own_shape == shape:
            continue
        if not (key.startswith(CLASS_DEPENDENT_PREFIXES) and own_shape[1:] == shape[1:]):
            raise YolactError(f"checkpoint does not fit the model: {_checkpoint_name(key, reference)} "
                              f"has shape {list(shape)} in the checkpoint and {list(own_shape)} in the model "
                              f"(another architecture?)")
        mismatches[key] = shape
    return mismatches
