"""ResNet backbone: torchvision's ResNet without its classifier, returning C3, C4, C5 (SPEC §1)."""
import functools
import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torchvision.models import get_weight
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from yolact.errors import YolactError
from yolact.modeling.deform_conv import ModulatedDeformConv2d

__all__ = ["BACKBONES", "build_backbone", "ResNetBackbone", "load_backbone_weights", "imagenet_arch_name",
           "deformable_blocks"]

logger = logging.getLogger("yolact")

_BLOCKS = {"bottleneck": Bottleneck, "basic": BasicBlock}

# torchvision's standard architectures: (block, blocks per stage) -> name
_STANDARD_ARCHS = {
    ("basic", (2, 2, 2, 2)): "resnet18",
    ("basic", (3, 4, 6, 3)): "resnet34",
    ("bottleneck", (3, 4, 6, 3)): "resnet50",
    ("bottleneck", (3, 4, 23, 3)): "resnet101",
    ("bottleneck", (3, 8, 36, 3)): "resnet152",
}

# the file names the reference's README points to (Hugging Face dbolya/yolact-initial-weights)
_REFERENCE_FILES = {"resnet50": "resnet50-19c8e357.pth", "resnet101": "resnet101_reducedfc.pth"}


class ResNetBackbone(nn.Module):
    """torchvision ResNet body (stem and four stages), without avgpool and fc.

    Parameter names are torchvision's (``conv1``, ``bn1``, ``layer1`` .. ``layer4``), so
    torchvision's ImageNet state_dicts load directly. As in torchvision (and the reference),
    the stride of a Bottleneck sits on its 3x3 conv, and stage 1 of a Bottleneck ResNet gets a
    stride-1 downsample branch because its in-channels (64) differ from its out-channels (256).

    Args:
        block: "bottleneck" (ResNet-50/101) or "basic" (ResNet-18/34).
        layers: blocks per stage, e.g. (3, 4, 23, 3) for ResNet-101.
        dcn_layers: per stage, how many of its last blocks may be deformable (YOLACT++: the
            3x3 ``conv2`` becomes a DCNv2 :class:`ModulatedDeformConv2d` with a bias); see
            :func:`deformable_blocks`. (0, 0, 0, 0), the default, is plain YOLACT.
        dcn_interval: among those blocks, every ``dcn_interval``-th is deformable.

    Attributes:
        out_channels: channels of (C3, C4, C5): (512, 1024, 2048) for bottleneck blocks,
            (128, 256, 512) for basic blocks.
    """

    def __init__(self, *, block: str = "bottleneck", layers: Sequence[int] = (3, 4, 23, 3),
                 dcn_layers: Sequence[int] = (0, 0, 0, 0), dcn_interval: int = 1):
        super().__init__()
        if block not in _BLOCKS:
            raise YolactError(f"unknown backbone block {block!r}: expected one of {sorted(_BLOCKS)}")
        if len(layers) != 4:
            raise YolactError(f"backbone layers must give 4 block counts, got {list(layers)}")
        self.block = block
        self.blocks_per_stage = tuple(int(n) for n in layers)
        resnet = ResNet(_BLOCKS[block], list(self.blocks_per_stage))
        self.conv1, self.bn1, self.relu, self.maxpool = resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool
        self.layer1, self.layer2, self.layer3 = resnet.layer1, resnet.layer2, resnet.layer3
        self.layer4 = resnet.layer4
        self._make_deformable(dcn_layers, dcn_interval)
        expansion = _BLOCKS[block].expansion
        self.out_channels: Tuple[int, int, int] = (128 * expansion, 256 * expansion, 512 * expansion)

    def _make_deformable(self, dcn_layers: Sequence[int], dcn_interval: int) -> None:
        if len(dcn_layers) != 4 or dcn_interval < 1:
            raise YolactError(f"backbone dcn_layers must give 4 counts and dcn_interval be >= 1, got "
                              f"{list(dcn_layers)} and {dcn_interval}")
        for stage, num_dcn in zip((self.layer1, self.layer2, self.layer3, self.layer4), dcn_layers):
            deformable_per_block = deformable_blocks(len(stage), num_dcn, dcn_interval)
            for residual_block, deformable in zip(stage, deformable_per_block):
                if deformable:
                    conv = residual_block.conv2
                    residual_block.conv2 = ModulatedDeformConv2d(
                        conv.in_channels, conv.out_channels, conv.kernel_size[0], stride=conv.stride[0],
                        padding=conv.padding[0], dilation=conv.dilation[0])

    def forward(self, images: torch.Tensor) -> List[torch.Tensor]:
        """images [N,3,H,W] float -> [C3 (stride 8), C4 (stride 16), C5 (stride 32)].

        For a 550 input: stem 275, maxpool 138, C2 138, C3 69, C4 35, C5 18.
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        c2 = self.layer1(x)  # computed but not used by the FPN (selected_layers [1, 2, 3])
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c3, c4, c5]


def deformable_blocks(num_blocks: int, dcn_layers: int, dcn_interval: int = 1) -> List[bool]:
    """Which blocks of a stage are deformable, by the reference's rule (YOLACT++ backbone.py).

    The first block is deformable when ``dcn_layers >= num_blocks``; block i > 0 when
    ``i + dcn_layers >= num_blocks`` and ``i % dcn_interval == 0``. ResNet-101 of
    yolact_plus_base (dcn_layers 23, interval 3, 23 blocks): blocks 0, 3, ..., 21 of stage 3.
    """
    first = dcn_layers >= num_blocks
    return [first] + [i + dcn_layers >= num_blocks and i % dcn_interval == 0 for i in range(1, num_blocks)]


def imagenet_arch_name(block: str, layers: Sequence[int]) -> Optional[str]:
    """torchvision's name of the standard ResNet with these blocks ("resnet101"), else None."""
    return _STANDARD_ARCHS.get((block, tuple(int(n) for n in layers)))


def load_backbone_weights(backbone: ResNetBackbone, pretrained: Optional[str]) -> None:
    """Initialise ``backbone`` from ImageNet weights.

    Args:
        pretrained: None (keep torchvision's default init), "imagenet" (torchvision's weights
            API; a standard architecture only) or the path of a local .pth file holding a
            ResNet state_dict in torchvision's layout (``layer1.0.conv1.weight``) or the
            reference's (``layers.0.0.conv1.weight``), optionally prefixed with ``backbone.``.

    Like the reference the load is non-strict (fc keys and any absent key are skipped), but a
    file that provides none of the backbone's tensors, a tensor of another shape, a missing
    file or an offline "imagenet" download raise :class:`YolactError` with one line.
    """
    if pretrained is None:
        return
    if pretrained == "imagenet":
        state, source = _imagenet_state(backbone), "torchvision ImageNet weights"
    else:
        state, source = _local_state(Path(pretrained)), str(pretrained)
    _load_non_strict(backbone, _to_torchvision_keys(state), source)


def _imagenet_state(backbone: ResNetBackbone) -> Dict[str, torch.Tensor]:
    arch = imagenet_arch_name(backbone.block, backbone.blocks_per_stage)
    if arch is None:
        raise YolactError(f"no ImageNet weights for a {backbone.block} ResNet with layers "
                          f"{list(backbone.blocks_per_stage)}: set model.backbone.pretrained to a file/null")
    weights = get_weight(f"{arch.replace('resnet', 'ResNet')}_Weights.IMAGENET1K_V1")
    try:
        return torch.hub.load_state_dict_from_url(weights.url, map_location="cpu", progress=False,
                                                  check_hash=True, weights_only=True)
    except (OSError, RuntimeError) as error:
        torchvision_file = weights.url.rsplit("/", 1)[-1]
        candidates = [_REFERENCE_FILES[arch]] if arch in _REFERENCE_FILES else []
        candidates.append(f"torchvision's {torchvision_file}")
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise YolactError(f"could not download the ImageNet weights of {arch} ({reason}); offline, put "
                          f"{' or '.join(candidates)} in weights/ and set "
                          f"model.backbone.pretrained=weights/<that file>") from error


def _local_state(path: Path) -> Dict[str, torch.Tensor]:
    if not path.is_file():
        raise YolactError(f"backbone weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file is a user error here, reported in one line
        raise YolactError(f"cannot read backbone weights {path}: {type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else ''}") from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise YolactError(f"backbone weights {path} hold a {type(state).__name__}, not a state_dict")
    return state


def _to_torchvision_keys(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename the reference's ``layers.N.`` to torchvision's ``layerN+1.``; drop fc and prefixes."""
    renamed = {}
    for key, tensor in state.items():
        key = key[len("backbone."):] if key.startswith("backbone.") else key
        if key.startswith("fc."):
            continue
        if key.startswith("layers."):
            stage, rest = key[len("layers."):].split(".", 1)
            key = f"layer{int(stage) + 1}.{rest}"
        renamed[key] = tensor
    return renamed


def _load_non_strict(backbone: ResNetBackbone, state: Dict[str, torch.Tensor], source: str) -> None:
    own_state = backbone.state_dict()
    for key, tensor in state.items():
        if key in own_state and tuple(own_state[key].shape) != tuple(tensor.shape):
            raise YolactError(f"{source}: {key} has shape {list(tensor.shape)}, the backbone expects "
                              f"{list(own_state[key].shape)} (another architecture?)")
    result = backbone.load_state_dict(state, strict=False)
    loaded = set(own_state) - set(result.missing_keys)
    if not any(not key.endswith("num_batches_tracked") for key in loaded):
        raise YolactError(f"{source}: none of the backbone's tensors found (first expected key: "
                          f"{next(iter(own_state))}); not a ResNet state_dict")
    missing = [key for key in result.missing_keys if not key.endswith("num_batches_tracked")]
    if missing:
        logger.warning(f"{source}: {len(missing)} backbone tensors not in the file keep their default init "
                       f"(first: {missing[0]})")
    logger.info(f"backbone initialised from {source}")


def build_resnet(*, block: str, layers: Sequence[int], pretrained: Optional[str],
                 dcn_layers: Sequence[int] = (0, 0, 0, 0), dcn_interval: int = 1) -> ResNetBackbone:
    """A :class:`ResNetBackbone` initialised as ``pretrained`` says (see :func:`load_backbone_weights`)."""
    backbone = ResNetBackbone(block=block, layers=layers, dcn_layers=dcn_layers, dcn_interval=dcn_interval)
    load_backbone_weights(backbone, pretrained)
    return backbone


# Backbone name (``model.backbone.block``) -> ``builder(layers=..., pretrained=...)``. A builder
# returns a module whose forward maps images [N,3,H,W] to [C3, C4, C5] (strides 8, 16, 32) and
# whose ``out_channels`` gives their channels; a new backbone is one entry here (and its name in
# the config schema's ``BackboneConfig.block``).
BACKBONES: Dict[str, Callable[..., nn.Module]] = {
    "bottleneck": functools.partial(build_resnet, block="bottleneck"),
    "basic": functools.partial(build_resnet, block="basic"),
}


def build_backbone(name: str, *, layers: Sequence[int], pretrained: Optional[str], **options) -> nn.Module:
    """The backbone ``name`` of :data:`BACKBONES`; ``options`` go to its builder (e.g. the ResNets'
    ``dcn_layers``/``dcn_interval``). An unknown name raises YolactError."""
    if name not in BACKBONES:
        raise YolactError(f"unknown backbone {name!r}: expected one of {sorted(BACKBONES)}")
    return BACKBONES[name](layers=layers, pretrained=pretrained, **options)
