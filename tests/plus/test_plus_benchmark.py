"""scripts/benchmark.py infer names YOLACT++ rows beside YOLACT ones (tiny sizes here)."""
import json

import pytest

from tests.test_benchmark_script import load_script
from yolact.benchmarks.infer_bench import plus_overrides

pytestmark = pytest.mark.slow


def test_infer_rows_for_yolact_and_yolact_plus(tmp_path, capsys):
    out = tmp_path / "infer.json"
    args = ["infer", "--models", "yolact,yolact++", "--backbone", "tiny", "--size", "64", "--width", "16",
            "--classes", "3", "--batch", "1", "--repeats", "1", "--warmup", "1", "--threads", "1", "--json", str(out)]
    assert load_script().main(args) == 0
    rows = json.loads(out.read_text())["rows"]
    # each architecture: as trained, as eval.py optimizes it here, then (with NNPACK) the other Winograd choice
    assert [(row["arch"], row["model"]) for row in rows if not row["model"].startswith("optimized, ")] == [
        ("YOLACT tiny", "as trained"), ("YOLACT tiny", "optimized (default)"),
        ("YOLACT++ tiny", "as trained"), ("YOLACT++ tiny", "optimized (default)")]
    assert all(row["network_ms"] > 0 and row["detections_per_image"] > 0 for row in rows)
    assert "YOLACT++ tiny" in capsys.readouterr().out


def test_plus_overrides_follow_the_reference_plus_configs():
    r101, r50 = plus_overrides("r101", 550), plus_overrides("r50", 550)
    assert "model.backbone.dcn_layers=[0, 4, 23, 3]" in r101 and "model.backbone.dcn_interval=3" in r101
    assert "model.backbone.dcn_layers=[0, 4, 6, 3]" in r50 and "model.backbone.dcn_interval=1" in r50
    assert "model.maskiou_channels=[8, 16, 32, 64, 128]" in r50  # prototypes 138 -> 1
    assert "model.maskiou_channels=[8, 16, 32, 64]" in plus_overrides("r50", 192)  # the fixture's 48 -> 2
    assert "model.maskiou_channels=[8, 16, 32]" in plus_overrides("tiny", 64)  # 16 -> 1


def test_unknown_model_names_are_one_line_and_exit_2(capsys):
    assert load_script().main(["infer", "--models", "yolact,yolact+++", "--backbone", "tiny"]) == 2
    assert capsys.readouterr().err == "error: --models takes a comma list of ['yolact', 'yolact++'], " \
                                      "got 'yolact,yolact+++'\n"
