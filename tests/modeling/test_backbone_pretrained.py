"""Backbone: torchvision's ResNet body, C3-C5, and its ImageNet/local weight loading (SPEC §1)."""
import urllib.error

import pytest
import torch
from torchvision.models.feature_extraction import create_feature_extractor
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from yolact.errors import YolactError
from yolact.modeling.backbone import ResNetBackbone, load_backbone_weights


def _torchvision_resnet(block=Bottleneck):
    torch.manual_seed(3)
    resnet = ResNet(block, [1, 1, 1, 1])
    with torch.no_grad():  # non-trivial BN statistics so a wrong mapping shows
        for module in resnet.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return resnet.eval()


def test_outputs_equal_torchvision_resnet_stages_in_both_key_layouts(tmp_path):
    resnet = _torchvision_resnet()
    images = torch.randn(1, 3, 550, 550)
    with torch.no_grad():
        expected = create_feature_extractor(resnet, {"layer2": "c3", "layer3": "c4", "layer4": "c5"})(images)
    torchvision_file, reference_file = tmp_path / "torchvision.pth", tmp_path / "reference.pth"
    torch.save(resnet.state_dict(), torchvision_file)  # with fc.*, which must be dropped
    reference_layout = {(f"layers.{int(k[5]) - 1}{k[6:]}" if k.startswith("layer") else k): v
                        for k, v in resnet.state_dict().items()}
    torch.save(reference_layout, reference_file)
    for path in (torchvision_file, reference_file):
        backbone = ResNetBackbone(block="bottleneck", layers=(1, 1, 1, 1))
        load_backbone_weights(backbone, str(path))
        with torch.no_grad():
            c3, c4, c5 = backbone.eval()(images)
        assert [c.shape[1:] for c in (c3, c4, c5)] == [(512, 69, 69), (1024, 35, 35), (2048, 18, 18)]
        for ours, name in zip((c3, c4, c5), ("c3", "c4", "c5")):
            assert torch.equal(ours, expected[name]), name


def test_stage_one_downsample_and_basic_block_channels():
    bottleneck = ResNetBackbone(block="bottleneck", layers=(1, 1, 1, 1))
    assert bottleneck.layer1[0].downsample[0].stride == (1, 1)  # torchvision's stride-1 downsample quirk
    assert bottleneck.out_channels == (512, 1024, 2048)
    basic = ResNetBackbone(block="basic", layers=(1, 1, 1, 1))
    assert basic.layer1[0].downsample is None and basic.out_channels == (128, 256, 512)
    assert not any(name.startswith("fc") for name in basic.state_dict())


def test_local_file_errors(tmp_path):
    backbone = ResNetBackbone(block="basic", layers=(1, 1, 1, 1))
    missing = tmp_path / "resnet101_reducedfc.pth"
    with pytest.raises(YolactError, match="not found: .*resnet101_reducedfc.pth"):
        load_backbone_weights(backbone, str(missing))
    unrelated = tmp_path / "unrelated.pth"
    torch.save({"encoder.weight": torch.zeros(3)}, unrelated)
    with pytest.raises(YolactError, match="none of the backbone's tensors"):
        load_backbone_weights(backbone, str(unrelated))
    wrong_shape = tmp_path / "bottleneck.pth"
    torch.save(_torchvision_resnet(Bottleneck).state_dict(), wrong_shape)
    with pytest.raises(YolactError, match=r"layer1.0.conv1.weight has shape \[64, 64, 1, 1\]"):
        load_backbone_weights(backbone, str(wrong_shape))


def test_imagenet_offline_names_the_file_to_put_in_weights(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(YolactError) as error:
        load_backbone_weights(ResNetBackbone(block="bottleneck", layers=(3, 4, 23, 3)), "imagenet")
    message = str(error.value)
    assert "\n" not in message
    assert "resnet101_reducedfc.pth or torchvision's resnet101-63fe2227.pth in weights/" in message
    with pytest.raises(YolactError, match="no ImageNet weights for a bottleneck ResNet"):
        load_backbone_weights(ResNetBackbone(block="bottleneck", layers=(1, 1, 1, 1)), "imagenet")


def test_imagenet_uses_torchvision_weights_api(monkeypatch):
    source = ResNet(BasicBlock, [2, 2, 2, 2]).state_dict()
    requested = []

    def fake_download(url, **kwargs):
        requested.append((url, kwargs["weights_only"]))
        return source

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    backbone = ResNetBackbone(block="basic", layers=(2, 2, 2, 2))
    load_backbone_weights(backbone, "imagenet")
    assert requested == [("https://download.pytorch.org/models/resnet18-f37072fd.pth", True)]
    loaded = backbone.state_dict()
    assert all(torch.equal(loaded[key], source[key]) for key in loaded)
