"""scripts/benchmark.py: every sub-command runs on tiny sizes and writes its table and json."""
import importlib.util
import json
from pathlib import Path

import pytest

from tests.engine.tiny_run import make_tiny_shapes
from yolact.optimize.winograd_conv import winograd_available

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def load_script():
    spec = importlib.util.spec_from_file_location("benchmark_script", REPO / "scripts" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data_overrides(tmp_path_factory):
    root = make_tiny_shapes(tmp_path_factory.mktemp("bench") / "shapes")
    return [f"data.train_images={root / 'train'}", f"data.train_annotations={root / 'annotations' / 'instances_train.json'}",
            f"data.val_images={root / 'val'}", f"data.val_annotations={root / 'annotations' / 'instances_val.json'}"]


@pytest.mark.parametrize("command, columns, rows", [
    ("nms", ["method", "median_ms", "speedup_vs_batched_nms"], 3),
    ("loss", ["measure", "median_ms"], 6),
    ("train", ["data", "amp", "channels_last", "step_ms", "speedup_vs_fp32"], 5),
    # as trained, optimized, and (with NNPACK) the other Winograd choice; batch 1 and 8
    ("infer", ["batch", "model", "rewrites", "network_ms", "nms_ms", "masks_ms", "images_per_s", "speedup"],
     6 if winograd_available() else 4),
    ("data", ["workers", "images_per_s"], 4),
])
def test_each_subcommand_prints_a_table_and_writes_json(command, columns, rows, data_overrides, tmp_path, capsys):
    out = tmp_path / f"{command}.json"
    args = [command, *data_overrides, "--backbone", "tiny", "--size", "64", "--width", "16", "--classes", "3",
            "--repeats", "2", "--warmup", "1", "--threads", "1", "--json", str(out)]
    if command in ("loss", "train", "data"):
        args += ["--batch", "2"]
    if command == "train":
        args += ["--amp", "off,bf16"]
    assert load_script().main(args) == 0
    printed = capsys.readouterr().out
    header = printed.splitlines()[1]
    assert all(column in header for column in columns)
    result = json.loads(out.read_text())
    assert result["command"] == command and len(result["rows"]) == rows
    for row in result["rows"]:
        assert all(column in row for column in columns)
        assert all(value > 0 for key, value in row.items() if key.endswith("_ms"))
    if command == "infer":  # 64 px: every map under Winograd's 48x48, so no row may claim it
        optimized = "12 BN folded, head fused, channels_last, no Winograd"  # tiny: basic blocks
        assert [row["rewrites"] for row in result["rows"][:2]] == ["none", optimized]
        assert all(row["rewrites"].endswith("no Winograd") for row in result["rows"] if row["model"] != "as trained")


def test_rewrites_name_only_what_ran():
    from yolact.benchmarks.infer_bench import describe_rewrites

    counts = {"folded_batchnorms": 53, "fused_heads": 1, "channels_last": 1, "winograd_convs": 18}
    assert describe_rewrites(counts, 8) == "53 BN folded, head fused, channels_last, Winograd in 8 of 18 convs"
    assert describe_rewrites(counts, 0) == "53 BN folded, head fused, channels_last, no Winograd"
    assert describe_rewrites({}, 0) == "none"


def test_benchmark_options_defaults_are_the_parsers():
    from yolact.benchmarks.options import BenchmarkOptions

    parsed = load_script().build_parser().parse_args(["nms"])
    assert BenchmarkOptions(**vars(parsed)) == BenchmarkOptions(command="nms", overrides=[])


def test_nms_candidates_file_is_an_argument(tmp_path, capsys):
    import torch

    generator = torch.Generator().manual_seed(0)
    candidates = {"boxes": torch.tensor([[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.5, 0.52], [0.6, 0.6, 0.9, 0.9]]),
                  "scores": torch.tensor([[0.9, 0.8, 0.7], [0.1, 0.1, 0.2]]),
                  "masks": torch.rand(3, 32, generator=generator)}
    torch.save({"candidates": candidates}, tmp_path / "candidates.pth")
    out = tmp_path / "nms.json"
    args = ["nms", "--classes", "2", "--repeats", "2", "--warmup", "1", "--candidates", str(tmp_path / "candidates.pth"),
            "--json", str(out)]
    assert load_script().main(args) == 0
    result = json.loads(out.read_text())
    # boxes 0 and 1 overlap (IoU 0.91): per class, class 0 keeps boxes 0 and 2, class 1 keeps box 2 and one of
    # the tied 0 and 1; cross class, each box's best class, box 1 goes
    assert [row["detections"] for row in result["rows"]] == [4, 2, 4]
    assert "candidates.pth candidates: 3 anchors x 2 classes" in result["notes"][0]


def test_missing_candidates_file_is_one_line_and_exit_2(tmp_path, capsys):
    assert load_script().main(["nms", "--candidates", str(tmp_path / "nope.pth")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope.pth'}: candidates file not found\n"


def _learn_on_a_tiny_hard_set(tmp_path):
    """(the tiny model's overrides, the hard set's folder, the json path) for ``learn``."""
    from tests.engine.tiny_run import tiny_overrides
    from yolact.data.hard_shapes import make_hard_shapes

    make_hard_shapes(tmp_path / "hard", style="a", num_train=6, num_val=3, seed=0)
    model = [word for word in tiny_overrides(tmp_path, tmp_path / "runs", **{"train.val_interval": 0})
             if not word.startswith(("data.", "train.max_iter", "train.lr_steps", "train.time="))]
    return model, tmp_path / "hard", tmp_path / "learn.json"


def test_learn_trains_within_the_budget_and_prints_ap(tmp_path, capsys):
    model, hard, out = _learn_on_a_tiny_hard_set(tmp_path)
    assert load_script().main(["learn", *model, "--budget", "0.1", "--train", str(hard / "train"),
                               "--val", str(hard / "val"), "--seed", "1", "--threads", "1", "--json", str(out)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()  # the final evaluation's summary comes first
    title = next(i for i, line in enumerate(lines) if line.startswith("learn on "))
    header = lines[title + 1].split()
    assert header == ["config", "seed", "budget_min", "input_px", "iterations", "images_seen", "mask_AP", "box_AP",
                      "wall_s"]
    (row,) = json.loads(out.read_text())["rows"]
    assert (row["config"], row["seed"], row["budget_min"], row["input_px"]) == ("small", 1, 0.1, 64)
    assert row["iterations"] >= 1 and row["images_seen"] == 2 * row["iterations"]
    assert 0.0 <= row["mask_AP"] <= 1.0 and 0.0 <= row["box_AP"] <= 1.0
    train_log = (tmp_path / "runs" / "learn-small-seed1" / "train.log").read_text()
    assert "time budget 0.10 min:" in train_log and "validation at iteration" in train_log  # the yolact log at INFO
    assert "final mask AP" in captured.err


def test_learn_with_the_budget_turned_off_trains_a_fixed_length_and_says_so(tmp_path):
    model, hard, out = _learn_on_a_tiny_hard_set(tmp_path)
    assert load_script().main(["learn", *model, "train.time=null", "train.max_iter=3", "--budget", "0.1",
                               "--train", str(hard / "train"), "--val", str(hard / "val"), "--seed", "1",
                               "--threads", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    (row,) = result["rows"]
    assert (row["budget_min"], row["iterations"], row["images_seen"]) == (None, 3, 6)
    assert result["notes"][0].startswith("small with no time budget, train.max_iter=3 on ")
