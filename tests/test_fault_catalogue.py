"""The catalogue of bad inputs: each one through ``train.main`` with its exit code and message."""
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

import train
from tests.engine.tiny_run import make_tiny_shapes, tiny_overrides

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_tiny_shapes(tmp_path_factory.mktemp("catalogue") / "shapes")


@pytest.fixture
def dataset(pristine, tmp_path):
    copy = tmp_path / "shapes"
    shutil.copytree(pristine, copy)
    return copy


def train_json(root: Path) -> Path:
    return root / "annotations" / "instances_train.json"


def edit_json(root: Path, edit) -> None:
    content = json.loads(train_json(root).read_text())
    edit(content)
    train_json(root).write_text(json.dumps(content))


def run(root: Path, tmp_path: Path, *extra) -> int:
    args = tiny_overrides(root, tmp_path / "runs", **{"train.val_interval": 0, "train.max_iter": 1})
    return train.main(["--config", "shapes", "--no-eval", *extra] + args)


def only_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    return lines[0]


def test_missing_dataset_folder(dataset, tmp_path, capsys):
    shutil.rmtree(dataset / "train")
    assert run(dataset, tmp_path) == 2
    assert f"image folder not found: {dataset / 'train'}" in only_error(capsys)


def test_truncated_annotation_json(dataset, tmp_path, capsys):
    text = train_json(dataset).read_text()
    train_json(dataset).write_text(text[: len(text) // 2])
    assert run(dataset, tmp_path) == 2
    assert "instances_train.json: invalid JSON" in only_error(capsys)


def test_empty_dataset(dataset, tmp_path, capsys):
    edit_json(dataset, lambda content: content.update(images=[], annotations=[]))
    assert run(dataset, tmp_path) == 2
    assert "instances_train.json: no images" in only_error(capsys)


def first_image(content):
    return content["images"][0]


def test_image_listed_but_missing_is_dropped(dataset, tmp_path, capsys):
    name = first_image(json.loads(train_json(dataset).read_text()))["file_name"]
    (dataset / "train" / name).unlink()
    assert run(dataset, tmp_path) == 0
    assert f"({name}): image file not found" in capsys.readouterr().err


def test_corrupt_jpeg_is_skipped_during_training(dataset, tmp_path, capsys):
    content = json.loads(train_json(dataset).read_text())
    for image in content["images"]:
        (dataset / "train" / image["file_name"]).write_bytes(b"\xff\xd8\xff broken")
        if image is content["images"][1]:
            break
    assert run(dataset, tmp_path, "train.max_iter=4") == 0
    assert "skipped (another image is used)" in capsys.readouterr().err


@pytest.mark.parametrize("corruption, message", [
    (lambda ann: ann.update(category_id=999), "category 999 is not in 'categories', annotation dropped"),
    (lambda ann: ann.update(segmentation=[[1, 1, 2, 2]], iscrowd=0), "no polygon with at least 3 points"),
    (lambda ann: ann.update(bbox=[500, 500, 10, 10]), "lies outside the 64x64 image, annotation dropped"),
])
def test_bad_annotations_are_dropped_with_a_message(dataset, tmp_path, capsys, corruption, message):
    edit_json(dataset, lambda content: corruption(content["annotations"][0]))
    assert run(dataset, tmp_path) == 0
    err = capsys.readouterr().err
    assert message in err


def test_checkpoint_of_another_model_and_another_class_count(dataset, tmp_path, capsys):
    assert run(dataset, tmp_path, "--name", "base") == 0
    weights = tmp_path / "runs" / "base" / "weights" / "last.pth"
    checkpoint = torch.load(weights, weights_only=True)
    wider = dict(checkpoint, model={k: torch.cat([v, v]) if k.startswith("fpn.") and v.ndim else v
                                    for k, v in checkpoint["model"].items()})
    torch.save(wider, tmp_path / "other_model.pth")
    assert run(dataset, tmp_path, f"model.init_weights={tmp_path / 'other_model.pth'}") == 2
    assert f"{tmp_path / 'other_model.pth'}: checkpoint does not fit the model" in only_error(capsys)
    assert sorted(os.listdir(tmp_path / "runs")) == ["base"]  # the failed run left no folder

    edit_json(dataset, lambda content: content["categories"].append({"id": 77, "name": "hexagon"}))
    assert run(dataset, tmp_path, "--name", "finetune", f"model.init_weights={weights}") == 0
    err = capsys.readouterr().err
    assert "re-initialised" in err and "another class count" in err
    finetuned = torch.load(tmp_path / "runs" / "finetune" / "weights" / "last.pth", weights_only=True)
    assert finetuned["class_names"][-1] == "hexagon" and finetuned["config"]["model"]["num_classes"] == 4
