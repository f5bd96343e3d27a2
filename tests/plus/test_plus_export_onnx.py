"""ONNX export of a YOLACT++ network: its DCNv2 layers become ONNX DeformConv (opset 19), which
ONNX Runtime runs like torchvision's deform_conv2d. The mask-IoU head is not in the graph."""
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from yolact.build import build_model, with_num_classes  # noqa: E402
from yolact.config import load_config  # noqa: E402
from yolact.export.onnx import RAW_OUTPUT_NAMES, ExportGraph, export_onnx, verify_onnx  # noqa: E402

TINY = ["model.backbone.layers=[1,1,1,1]", "model.backbone.block=basic", "model.input_size=64",
        "model.fpn_channels=16", "model.proto_channels=16", "model.head_channels=16",
        "model.num_prototypes=8",
        "model.anchor_scales=[8,16,32,64,128]", "model.maskiou_channels=[8]"]


def test_deformable_network_exports_to_deform_conv(tmp_path):
    import onnx

    torch.manual_seed(0)
    model = build_model(with_num_classes(load_config("shapes_plus", TINY), 3), pretrained=None).eval()
    with torch.no_grad():  # offsets of a few tenths of a pixel, so the sampling is really deformable
        for name, param in model.named_parameters():
            if "conv_offset_mask" in name:
                param.uniform_(-0.05, 0.05)
    graph = ExportGraph(model, input_size=64)
    result = export_onnx(graph, tmp_path / "plus.onnx", opset=19)
    assert result.output_names == RAW_OUTPUT_NAMES and result.opset == 19
    op_types = [node.op_type for node in onnx.load(str(result.path)).graph.node]
    assert op_types.count("DeformConv") == 3  # the 3x3 conv2 of stages 2-4
    differences = verify_onnx(graph, result.path, torch.randn(2, 3, 64, 64), atol=1e-4, rtol=1e-4)
    assert set(differences) == set(RAW_OUTPUT_NAMES)
