"""Picture inference: one image, a folder (with a corrupt file), a video, and the detections json."""
import contextlib
import io
import json

import cv2
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from yolact.data.transforms import eval_transform
from yolact.engine.evaluation.predictor import (
    predict_image, run_on_folder, run_on_image, run_on_video, write_detections_json,
)
from yolact.errors import YolactError
from yolact.utils.visualize import class_color, draw_detections

INPUT_SIZE = 24
CLASS_NAMES = ["circle", "square"]


class RecordingModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.inputs, self.modes = [], []

    def forward(self, images):
        self.inputs.append(images.clone())
        self.modes.append(self.training)
        return {"pooled": images.mean(dim=(1, 2, 3)) * self.scale}


def fake_detections(height: int, width: int):
    """A confident "square" in the middle quarter and a weak "circle" in the top-left corner."""
    boxes = np.array([[width // 4, height // 4, 3 * width // 4, 3 * height // 4],
                      [0, 0, width // 5, height // 5]], np.float32)
    masks = np.zeros((2, height, width), bool)
    for mask, (x1, y1, x2, y2) in zip(masks, boxes.astype(int)):
        mask[y1:y2, x1:x2] = True
    return {"boxes": boxes, "labels": np.array([1, 0]), "scores": np.array([0.9, 0.1], np.float32),
            "masks": masks}


def fake_postprocessor(outputs, image_sizes, mask_format="bool"):
    per_image = []
    for height, width in image_sizes:
        found = {key: torch.from_numpy(value) for key, value in fake_detections(height, width).items()}
        if mask_format == "rle":
            stacked = found["masks"].numpy().transpose(1, 2, 0).astype(np.uint8)  # (H, W, K)
            rles = mask_utils.encode(np.asfortranarray(stacked))
            found["masks"] = [dict(rle, counts=rle["counts"].decode()) for rle in rles]
        per_image.append(found)
    return per_image


def options(model):
    return dict(model=model, postprocessor=fake_postprocessor, input_size=INPUT_SIZE,
                device=torch.device("cpu"), class_names=CLASS_NAMES, score_threshold=0.5)


def picture(height, width, seed):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)



def test_predict_image_uses_the_eval_transform_and_restores_the_mode():
    image = picture(30, 40, 0)
    model = RecordingModel().train()
    found = predict_image(model, fake_postprocessor, image, input_size=INPUT_SIZE, device=torch.device("cpu"))
    assert model.training and model.modes == [False]
    assert torch.equal(model.inputs[0], eval_transform(image, INPUT_SIZE)[None])
    expected = fake_detections(30, 40)
    assert found["boxes"].dtype == np.float32 and np.array_equal(found["boxes"], expected["boxes"])
    assert found["labels"].dtype == np.int64 and found["masks"].dtype == bool
    assert np.array_equal(found["masks"], expected["masks"])
    as_rle = predict_image(model, fake_postprocessor, image, input_size=INPUT_SIZE,
                           device=torch.device("cpu"), mask_format="rle")
    decoded = mask_utils.decode(as_rle["masks"]).transpose(2, 0, 1).astype(bool)  # (K, H, W)
    assert np.array_equal(decoded, expected["masks"])


def test_folder_gives_one_drawing_per_readable_image(tmp_path, yolact_log):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    images = {"a.png": picture(30, 40, 1), "b.jpg": picture(20, 24, 2), "c.bmp": picture(16, 16, 3)}
    for name, image in images.items():
        cv2.imwrite(str(in_dir / name), image)
    (in_dir / "broken.jpg").write_bytes(b"not a jpeg at all")
    (in_dir / "notes.txt").write_text("ignored")
    records = run_on_folder(in_dir, out_dir, progress=False, **options(RecordingModel()))
    assert sorted(p.name for p in out_dir.iterdir()) == ["a.png", "b.png", "c.png"]
    assert "broken.jpg: cannot read this image, skipped" in yolact_log.text
    assert [r["file_name"] for r in records] == ["a.png", "b.jpg", "c.bmp"]
    assert [(r["height"], r["width"]) for r in records] == [(30, 40), (20, 24), (16, 16)]
    # records keep every detection; the threshold only hides the weak one in the drawing
    assert [d["category_name"] for d in records[0]["detections"]] == ["square", "circle"]
    assert records[0]["detections"][0]["bbox"] == [10.0, 7.0, 20.0, 15.0]
    expected = draw_detections(images["a.png"], fake_detections(30, 40), CLASS_NAMES, score_threshold=0.5)
    assert np.array_equal(cv2.imread(str(out_dir / "a.png")), expected)
    # the weak detection is not drawn; the strong one is
    assert np.array_equal(expected[1:5, 1:7], images["a.png"][1:5, 1:7])
    assert not np.array_equal(expected[12:18, 14:26], images["a.png"][12:18, 14:26])


def test_folder_without_output_gives_records_only_and_json(tmp_path):
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    cv2.imwrite(str(in_dir / "x.png"), picture(30, 40, 4))
    cv2.imwrite(str(in_dir / "y.png"), picture(12, 20, 5))
    records = run_on_folder(in_dir, None, progress=False, **options(RecordingModel()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
    path = write_detections_json(tmp_path / "dets.json", records, category_ids=[3, 7])
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
        results = coco.loadRes(json.loads(path.read_text())["annotations"])
    assert [coco.imgs[i]["file_name"] for i in sorted(coco.imgs)] == ["x.png", "y.png"]
    assert coco.loadCats([3, 7]) == [{"id": 3, "name": "circle"}, {"id": 7, "name": "square"}]
    assert len(results.anns) == 4 and {a["category_id"] for a in coco.anns.values()} == {3, 7}
    square = [a for a in coco.anns.values() if a["image_id"] == 1 and a["category_id"] == 7][0]
    assert square["area"] == 20 * 15 and square["score"] == pytest.approx(0.9)


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(YolactError, match="image folder not found"):
        run_on_folder(tmp_path / "missing", tmp_path / "out", progress=False, **options(RecordingModel()))
    (tmp_path / "empty").mkdir()
    with pytest.raises(YolactError, match="no image files"):
        run_on_folder(tmp_path / "empty", None, progress=False, **options(RecordingModel()))
    cv2.imwrite(str(tmp_path / "empty" / "a.png"), picture(8, 8, 0))
    with pytest.raises(YolactError, match="must differ"):
        run_on_folder(tmp_path / "empty", tmp_path / "empty", progress=False, **options(RecordingModel()))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG garbage")
    with pytest.raises(YolactError, match=str(broken)):
        run_on_image(broken, tmp_path / "out.png", **options(RecordingModel()))
    with pytest.raises(YolactError, match="video file not found"):
        run_on_video(str(tmp_path / "none.mp4"), None, progress=False, **options(RecordingModel()))


def test_single_image_is_drawn(tmp_path):
    image = picture(30, 40, 6)
    cv2.imwrite(str(tmp_path / "in.png"), image)
    records = run_on_image(tmp_path / "in.png", tmp_path / "sub" / "out.png", **options(RecordingModel()))
    assert len(records) == 1 and records[0]["file_name"] == "in.png"
    expected = draw_detections(image, fake_detections(30, 40), CLASS_NAMES, score_threshold=0.5)
    assert np.array_equal(cv2.imread(str(tmp_path / "sub" / "out.png")), expected)


def test_video_is_processed_frame_by_frame(tmp_path):
    source = tmp_path / "in.mp4"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for index in range(5):
        writer.write(np.full((48, 64, 3), 40 + 30 * index, np.uint8))
    writer.release()
    model = RecordingModel()
    records = run_on_video(str(source), tmp_path / "out.mp4", progress=False, **options(model))
    assert [r["frame"] for r in records] == [0, 1, 2, 3, 4] and len(model.inputs) == 5
    assert all(r["file_name"] == "in.mp4" and len(r["detections"]) == 2 for r in records)
    capture = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert capture.get(cv2.CAP_PROP_FPS) == 10.0
    capture.release()
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)
    # the middle of each frame carries the translucent "square" colour (mp4 is lossy: tolerance)
    for index, frame in enumerate(frames):
        tinted = 0.55 * (40 + 30 * index) + 0.45 * np.array(class_color(1), np.float32)
        assert np.abs(frame[20:28, 26:38].reshape(-1, 3).mean(axis=0) - tinted).max() < 8
    assert len(run_on_video(str(source), tmp_path / "three.mp4", max_frames=3, progress=False,
                            **options(model))) == 3
