"""eval.py on a YOLACT++ checkpoint in the reference's key layout (as the released
yolact_plus_*_54_800000.pth), with its config: COCO evaluation runs and writes results."""
import json

import pytest
import torch

import eval as eval_cli
from tests.engine.tiny_run import make_tiny_shapes, tiny_overrides
from yolact.build import build_model, with_num_classes
from yolact.config import load_config
from yolact.modeling.reference_weights import to_reference_state_dict

pytestmark = pytest.mark.slow


def test_eval_cli_runs_a_reference_layout_plus_checkpoint(tmp_path, capsys):
    data_root = make_tiny_shapes(tmp_path / "shapes")
    overrides = [word for word in tiny_overrides(data_root, tmp_path / "runs")
                 if word.startswith(("model.", "data."))]
    overrides.append("model.maskiou_channels=[8]")  # 16x16 prototypes at 64: 16 -> 7
    config = with_num_classes(load_config("shapes_plus", overrides), 3)
    torch.manual_seed(0)
    state = to_reference_state_dict(build_model(config, pretrained=None).state_dict())
    assert any(".conv_offset_mask." in key for key in state) and "maskiou_net.maskiou_net.0.weight" in state
    weights = tmp_path / "yolact_plus_tiny_1_10.pth"
    torch.save(state, weights)
    args = ["--weights", str(weights), "--config", "shapes_plus", "--output", str(tmp_path / "out"),
            "--device", "cpu", "--max-images", "4", *overrides]
    assert eval_cli.main(args) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert all({"segmentation", "score"} <= set(record) for record in results)
    assert "segm (mask AP)" in capsys.readouterr().out
