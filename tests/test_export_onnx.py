"""scripts/export_onnx.py through main(): ONNX Runtime runs the exported graphs like PyTorch."""
import importlib.util
import logging
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from yolact.box_ops import decode_boxes  # noqa: E402
from yolact.build import build_model, with_num_classes  # noqa: E402
from yolact.config import load_config  # noqa: E402
from yolact.data.transforms import eval_transform  # noqa: E402
from yolact.errors import YolactError  # noqa: E402
from yolact.export.onnx import ExportGraph, check_images, verify_onnx  # noqa: E402
from yolact.postprocess import YolactPostProcessor, fast_nms  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "export_onnx.py"
TINY = ["model.backbone.layers=[1,1,1,1]", "model.backbone.block=basic", "model.backbone.pretrained=null",
        "model.input_size=64", "model.fpn_channels=16", "model.proto_channels=16", "model.head_channels=16",
        "model.num_prototypes=8", "model.anchor_scales=[8,16,32,64,128]",
        "model.anchor_octave_scales=1", "model.use_square_anchors=true"]  # the reference's anchors
NUM_CLASSES, NUM_ANCHORS, PROTO_SIZE, NUM_PROTOS = 3, 258, 16, 8  # 3 anchors on 8x8, 4x4, 2x2, 1x1, 1x1


def load_script():
    spec = importlib.util.spec_from_file_location("export_onnx_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A random tiny model, its bare state_dict on disk, and a 48x80 test picture."""
    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    model = build_model(with_num_classes(load_config("shapes", TINY), NUM_CLASSES), pretrained=None).eval()
    torch.save(model.state_dict(), root / "tiny.pth")
    picture = np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    cv2.imwrite(str(root / "picture.png"), picture)
    return {"model": model, "weights": root / "tiny.pth", "picture": root / "picture.png", "root": root}


@pytest.fixture(scope="module")
def raw_onnx(tiny):
    """The raw graph, exported once through the script; its log lines go to tiny["raw_log"]."""
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("yolact")
    logger.addHandler(handler)
    try:
        assert export(tiny, tiny["root"] / "raw.onnx") == 0
    finally:
        logger.removeHandler(handler)
    tiny["raw_log"] = "\n".join(messages)
    return tiny["root"] / "raw.onnx"


def export(tiny, output, *extra):
    args = ["--weights", str(tiny["weights"]), "--config", "shapes", *TINY, "--output", str(output), *extra]
    return load_script().main(args)


def onnx_outputs(path, images):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return names, dict(zip(names, session.run(None, {"images": images.numpy()})))


def torch_outputs(model, images):
    with torch.no_grad():
        return {key: value.numpy() for key, value in model(images).items()}


def assert_close(got, expected):
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


def static_shapes(path):
    """Output name -> dims of the written graph ("batch" for the dynamic one)."""
    graph = onnx.load(str(path)).graph
    return {output.name: [dim.dim_param or dim.dim_value for dim in output.type.tensor_type.shape.dim]
            for output in graph.output}



def dynamo_unavailable(monkeypatch):
    real_export = torch.onnx.export

    def export_without_dynamo(*args, dynamo=True, **kwargs):
        if dynamo:
            raise RuntimeError("dynamo exporter unavailable in this test")
        return real_export(*args, dynamo=False, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", export_without_dynamo)


def test_raw_export_matches_pytorch_at_any_batch_size(tiny, raw_onnx):
    path = raw_onnx
    assert static_shapes(path) == {"cls_logits": ["batch", NUM_ANCHORS, NUM_CLASSES + 1],
                                   "box_deltas": ["batch", NUM_ANCHORS, 4],
                                   "mask_coeffs": ["batch", NUM_ANCHORS, NUM_PROTOS],
                                   "prototypes": ["batch", PROTO_SIZE, PROTO_SIZE, NUM_PROTOS],
                                   "anchors": [NUM_ANCHORS, 4]}
    log = tiny["raw_log"]
    assert re.search(r"with the dynamo exporter \(opset \d+, batch dynamic\)", log)
    assert "check against PyTorch on seeded random input [2, 3, 64, 64]: max abs diff cls_logits" in log
    for batch_size in (1, 3):
        images = torch.randn((batch_size, 3, 64, 64), generator=torch.Generator().manual_seed(batch_size))
        names, got = onnx_outputs(path, images)
        expected = torch_outputs(tiny["model"], images)
        assert names == ["cls_logits", "box_deltas", "mask_coeffs", "prototypes", "anchors"]
        for name in names:
            assert_close(got[name], expected[name])
        np.testing.assert_array_equal(got["anchors"], expected["anchors"])  # a constant of the graph


def test_postprocessed_export_gives_probabilities_and_decoded_boxes(tiny, yolact_log):
    path = tiny["root"] / "post.onnx"
    assert export(tiny, path, "--with-postprocess", "--check", str(tiny["picture"])) == 0
    assert static_shapes(path) == {"class_probs": ["batch", NUM_ANCHORS, NUM_CLASSES],
                                   "boxes": ["batch", NUM_ANCHORS, 4],
                                   "mask_coeffs": ["batch", NUM_ANCHORS, NUM_PROTOS],
                                   "prototypes": ["batch", PROTO_SIZE, PROTO_SIZE, NUM_PROTOS]}
    assert f"check against PyTorch on {tiny['picture']}" in yolact_log.text
    images = eval_transform(cv2.imread(str(tiny["picture"])), 64)[None]
    names, got = onnx_outputs(path, images)
    assert names == ["class_probs", "boxes", "mask_coeffs", "prototypes"]
    with torch.no_grad():
        raw = tiny["model"](images)
    assert_close(got["class_probs"], raw["cls_logits"].softmax(dim=-1)[..., 1:].numpy())
    assert_close(got["boxes"], decode_boxes(raw["box_deltas"], raw["anchors"]).numpy())
    assert_close(got["mask_coeffs"], raw["mask_coeffs"].numpy())
    assert_close(got["prototypes"], raw["prototypes"].numpy())
    # The host recipe of yolact/export/onnx.py on the ONNX outputs = the post-processor on PyTorch's.
    expected = YolactPostProcessor().detect(raw["cls_logits"].softmax(dim=-1), raw["box_deltas"],
                                            raw["mask_coeffs"], raw["anchors"])[0]
    scores = torch.from_numpy(got["class_probs"][0]).T  # (C, A)
    keep = scores.max(dim=0).values > 0.05
    found = fast_nms(torch.from_numpy(got["boxes"][0])[keep], scores[:, keep],
                     torch.from_numpy(got["mask_coeffs"][0])[keep])
    assert found["labels"].tolist() == expected["labels"].tolist() and len(found["labels"]) == 100
    for key in ("boxes", "scores", "mask_coeffs"):
        assert_close(found[key].numpy(), expected[key].numpy())


def test_torchscript_fallback_with_opset_and_check_skipped(tiny, yolact_log, monkeypatch):
    dynamo_unavailable(monkeypatch)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # the script's import fails; ours is held
    path = tiny["root"] / "torchscript.onnx"
    assert export(tiny, path, "--opset", "17") == 0
    assert "the dynamo ONNX exporter failed (dynamo exporter unavailable in this test)" in yolact_log.text
    assert "with the torchscript exporter (opset 17, batch dynamic)" in yolact_log.text
    assert "check skipped: onnxruntime is not installed" in yolact_log.text
    opsets = {entry.domain: entry.version for entry in onnx.load(str(path)).opset_import}
    assert opsets[""] == 17
    images = torch.randn((2, 3, 64, 64), generator=torch.Generator().manual_seed(5))
    names, got = onnx_outputs(path, images)
    expected = torch_outputs(tiny["model"], images)
    assert names == ["cls_logits", "box_deltas", "mask_coeffs", "prototypes", "anchors"]
    for name in names:
        assert_close(got[name], expected[name])


def test_check_beyond_tolerance_raises(tiny, raw_onnx):
    graph = ExportGraph(tiny["model"], input_size=64)
    images = check_images(None, input_size=64)
    differences = verify_onnx(graph, raw_onnx, images)
    assert list(differences) == ["cls_logits", "box_deltas", "mask_coeffs", "prototypes", "anchors"]
    assert 0 < differences["cls_logits"] < 1e-4 and differences["anchors"] == 0
    message = r"disagree on cls_logits \(max abs diff .*; tolerance atol 0 \+ rtol 0\)"
    with pytest.raises(YolactError, match=message):
        verify_onnx(graph, raw_onnx, images, atol=0, rtol=0)


def test_missing_checkpoint_exits_2_with_one_line(tiny, capsys):
    missing = tiny["root"] / "nope.pth"
    assert load_script().main(["--weights", str(missing), "--output", str(tiny["root"] / "x.onnx")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {missing}: checkpoint not found"]
    assert not (tiny["root"] / "x.onnx").exists()


def test_missing_onnx_package_exits_2_with_install_hint(tiny, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert export(tiny, tiny["root"] / "y.onnx") == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        'error: ONNX export needs the onnx package: pip install -e ".[export]"']


def test_unreadable_check_picture_exits_2_before_exporting(tiny, capsys):
    picture, output = tiny["root"] / "not_a_picture.png", tiny["root"] / "z.onnx"
    picture.write_bytes(b"not a png")
    assert export(tiny, output, "--check", str(picture)) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == f"error: {picture}: cannot read the picture for --check"
    assert not output.exists()


def test_both_exporters_failing_exits_2_and_leaves_no_file(tiny, monkeypatch, capsys):
    def failing_export(*args, dynamo=True, **kwargs):
        Path(args[2]).write_bytes(b"half written")
        raise RuntimeError(f"broken {'dynamo' if dynamo else 'torchscript'}\nsecond line")

    monkeypatch.setattr(torch.onnx, "export", failing_export)
    output = tiny["root"] / "failed.onnx"
    assert export(tiny, output) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    reasons = "dynamo: broken dynamo; torchscript: broken torchscript"
    assert error == f"error: {output}: ONNX export failed ({reasons})"
    assert not output.exists()
