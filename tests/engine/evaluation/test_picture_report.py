"""The line eval.py prints after picture, folder and video inference."""
from pathlib import Path

from yolact.engine.evaluation.picture_report import picture_report


def records(scores_per_picture):
    return [{"file_name": f"{i}.jpg", "detections": [{"score": s} for s in scores]}
            for i, scores in enumerate(scores_per_picture)]


def test_each_mode_says_where_how_many_and_how_fast():
    assert picture_report("image", records([[0.9, 0.1]]), Path("out/0_pred.png"), 0.25, 0.15) == (
        "0.jpg: 1 detections scoring >= 0.15 in 250 ms; drawing written to out/0_pred.png")
    assert picture_report("images", records([[0.9], [0.5, 0.2], []]), Path("out"), 2.0, 0.3) == (
        "3 pictures, 2 detections scoring >= 0.3 in 2.0 s (1.5 img/s); drawings in out/")
    assert picture_report("images", records([[0.9]]), None, 0.5, 0.3).endswith(
        "(2.0 img/s); no drawings (give IN:OUT to write them)")
    assert picture_report("video", records([[0.9]] * 30), Path("v.mp4"), 3.0, 0.5) == (
        "30 frames, 30 detections scoring >= 0.5 in 3.0 s (10.0 FPS); video written to v.mp4")


def test_a_missing_picture_gives_no_opencv_warning(tmp_path):
    import subprocess
    import sys

    code = ("from pathlib import Path; from yolact.engine.evaluation.predictor import _read_image; "
            f"print(_read_image(Path({str(tmp_path / 'missing.jpg')!r})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[3])
    assert (result.stdout, result.stderr) == ("None\n", "")
