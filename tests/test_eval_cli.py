"""eval.py through its real entry point on a tiny trained shapes model: every mode and bad input."""
import json
import re

import cv2
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import eval as eval_cli
import train
from tests.engine.tiny_run import make_tiny_shapes, tiny_overrides

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalcli")
    data_root = make_tiny_shapes(root / "shapes")
    args = tiny_overrides(data_root, root / "runs", **{"train.val_interval": 0, "train.max_iter": 2})
    assert train.main(["--config", "shapes", "--name", "tiny", "--no-eval"] + args) == 0
    return {"weights": root / "runs" / "tiny" / "weights" / "last.pth", "data": data_root, "root": root}


def error_line(capsys):
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1
    return err[0]


def test_coco_eval_prints_what_cocoeval_computes_on_its_json(trained, tmp_path, capsys):
    assert eval_cli.main(["--weights", str(trained["weights"]), "--output", str(tmp_path), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    printed = [float(v) for v in re.findall(r"maxDets=100 \] = (-?[0-9.]+)", out)]
    gt = COCO(str(trained["data"] / "annotations" / "instances_val.json"))
    results = json.loads((tmp_path / "results.json").read_text())
    stats = []
    for iou_type in ("bbox", "segm"):
        evaluator = COCOeval(gt, gt.loadRes(results), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
        stats.append(evaluator.stats)
    expected = [round(float(s), 3) for s in (stats[0][0], stats[0][1], stats[0][2], stats[0][3], stats[0][4], stats[0][5])]
    assert printed[:6] == expected
    assert "per-class AP" in out and "circle" in out
    assert all(r["category_id"] in gt.getCatIds() for r in results)


def test_folder_inference_writes_one_picture_per_image_and_json(trained, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for index, path in enumerate(sorted((trained["data"] / "val").iterdir())[:3]):
        (folder / f"img{index}.jpg").write_bytes(path.read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out_dir = tmp_path / "out"
    json_path = tmp_path / "dets.json"
    assert eval_cli.main(["--weights", str(trained["weights"]), "--images", f"{folder}:{out_dir}", "--save-json",
                          str(json_path), "--device", "cpu"]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["img0.png", "img1.png", "img2.png"]
    assert "broken.jpg" in capsys.readouterr().err
    detections = COCO(str(json_path))
    assert len(detections.getImgIds()) == 3


def test_single_image_and_video(trained, tmp_path):
    image = next((trained["data"] / "val").iterdir())
    assert eval_cli.main(["--weights", str(trained["weights"]), "--image", f"{image}:{tmp_path / 'one.png'}",
                          "--device", "cpu"]) == 0
    assert cv2.imread(str(tmp_path / "one.png")).shape == cv2.imread(str(image)).shape
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 64))
    for k in range(4):
        writer.write(np.full((64, 64, 3), 40 * k, np.uint8))
    writer.release()
    assert eval_cli.main(["--weights", str(trained["weights"]), "--video", f"{video}:{tmp_path / 'out.mp4'}",
                          "--device", "cpu"]) == 0
    capture = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 4


def test_drawing_switches_and_the_line_saying_where(trained, tmp_path, capsys):
    image = sorted((trained["data"] / "val").iterdir())[0]
    bare = tmp_path / "bare.png"
    assert eval_cli.main(["--weights", str(trained["weights"]), "--image", f"{image}:{bare}", "--hide-boxes",
                          "--hide-labels", "--mask-alpha", "0", "--score-threshold", "0", "--device", "cpu"]) == 0
    assert np.array_equal(cv2.imread(str(bare)), cv2.imread(str(image)))  # nothing drawn at all
    err = capsys.readouterr().err
    assert f"{image.name}: " in err and f"drawing written to {bare}" in err
    folder = tmp_path / "pictures"
    assert eval_cli.main(["--weights", str(trained["weights"]), "--images", f"{trained['data'] / 'val'}:{folder}",
                          "--device", "cpu"]) == 0
    assert "4 pictures, " in capsys.readouterr().err and len(list(folder.iterdir())) == 4
    assert eval_cli.main(["--weights", str(trained["weights"]), "--image", str(image), "--mask-alpha", "2",
                          "--device", "cpu"]) == 2
    assert "--mask-alpha must be in [0, 1]" in error_line(capsys)


def test_benchmark_prints_fps_and_split(trained, capsys):
    assert eval_cli.main(["--weights", str(trained["weights"]), "--benchmark", "--max-images", "4",
                          "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for name in ("network (backbone+heads)", "NMS", "masks", "total", "FPS"):
        assert name in out
    assert "channels_last=True" in out  # the optimized CPU model's format, as "inference model: ..." says


def test_optimized_model_gives_the_results_of_the_model_as_trained(trained, tmp_path, yolact_log):
    runs = {}
    for name, flags in (("optimized", []), ("as_trained", ["--no-optimize"])):
        assert eval_cli.main(["--weights", str(trained["weights"]), "--output", str(tmp_path / name),
                              "--device", "cpu", "--max-images", "4", *flags]) == 0
        runs[name] = json.loads((tmp_path / name / "results.json").read_text())
    assert "BatchNorms folded" in yolact_log.text
    assert len(runs["optimized"]) == len(runs["as_trained"]) > 0
    for ours, plain in zip(runs["optimized"], runs["as_trained"]):
        assert (ours["image_id"], ours["category_id"]) == (plain["image_id"], plain["category_id"])
        assert abs(ours["score"] - plain["score"]) < 1e-4
        assert np.allclose(ours["bbox"], plain["bbox"], atol=1e-2)


def test_each_nms_choice_runs(trained, tmp_path, capsys):
    for nms in ("fast", "cross_class", "standard"):
        assert eval_cli.main(["--weights", str(trained["weights"]), "--nms", nms, "--output", str(tmp_path / nms),
                              "--device", "cpu", "--max-images", "2"]) == 0
        COCO(str(trained["data"] / "annotations" / "instances_val.json")).loadRes(str(tmp_path / nms / "results.json"))


def test_bad_inputs_exit_2_with_one_line(trained, tmp_path, capsys):
    weights = str(trained["weights"])
    assert eval_cli.main(["--weights", str(tmp_path / "none.pth")]) == 2
    assert "none.pth: checkpoint not found" in error_line(capsys)
    other = torch.load(weights, weights_only=True)
    other["model"] = {k: (v[:1] if k.startswith("fpn.") and v.ndim else v) for k, v in other["model"].items()}
    torch.save(other, tmp_path / "other.pth")
    assert eval_cli.main(["--weights", str(tmp_path / "other.pth"), "--device", "cpu"]) == 2
    assert "other.pth: does not fit the config's model" in error_line(capsys)
    (tmp_path / "bad.png").write_bytes(b"nope")
    assert eval_cli.main(["--weights", weights, "--image", str(tmp_path / "bad.png"), "--device", "cpu"]) == 2
    assert "bad.png" in error_line(capsys)
    assert eval_cli.main(["--weights", weights, "--images", f"{tmp_path / 'absent'}:{tmp_path / 'o'}",
                          "--device", "cpu"]) == 2
    assert "absent" in error_line(capsys)


def test_eval_options_defaults_are_the_parsers():
    from yolact.engine.evaluation.eval_app import EvalOptions

    assert EvalOptions(**vars(eval_cli.build_parser().parse_args(["--weights", "w.pth"]))) == \
        EvalOptions(weights="w.pth", overrides=[])
