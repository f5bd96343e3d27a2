"""The hard shapes sets: deterministic, exact masks after occlusion, mixed formats, loadable."""
import contextlib
import dataclasses
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from yolact.data import CocoInstanceDataset, EvalTransform, decode_masks
from yolact.data.hard_shapes import STYLES, draw_image, main, make_hard_shapes, object_annotation

CATEGORY_IDS = {"a": [3, 7, 12, 40, 41, 55, 77], "b": [2, 9, 17, 33, 58, 90],
                "c": [1, 4, 13, 21, 34, 50, 67, 88], "d": [3, 7, 12, 40]}


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """Style -> (train dir, val dir) of 20 + 3 images, seed 0."""
    root = tmp_path_factory.mktemp("hard")
    return {style: make_hard_shapes(root / style, style=style, num_train=20, num_val=3, seed=0)
            for style in "abcd"}


def quiet_coco(path):
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def test_same_seed_same_bytes_other_seed_or_style_differs(tmp_path, sets):
    train, _ = sets["a"]
    again, _ = make_hard_shapes(tmp_path / "again", style="a", num_train=20, num_val=3, seed=0)
    assert (train / "annotations.json").read_bytes() == (again / "annotations.json").read_bytes()
    for image in (train / "images").glob("*.jpg"):
        assert image.read_bytes() == (again / "images" / image.name).read_bytes()
    other, _ = make_hard_shapes(tmp_path / "other", style="a", num_train=20, num_val=3, seed=1)
    assert (other / "annotations.json").read_bytes() != (train / "annotations.json").read_bytes()
    other_style = sets["b"][0] / "images" / "00000.jpg"
    assert other_style.read_bytes() != (train / "images" / "00000.jpg").read_bytes()


@pytest.mark.parametrize("style", "abcd")
def test_masks_are_exactly_the_pixels_on_top(style):
    # Flat fills and no pixel noise: each visible mask must be one colour, and be the object's
    # own shape minus every later shape.
    flat = dataclasses.replace(STYLES[style], object_textures=(None,), noise_sigma=(0.0, 0.0),
                               crowd_prob=1.0)
    rng = np.random.default_rng(3)
    num_occluded = 0
    for _ in range(6):
        image, objects = draw_image(rng, flat)
        assert objects and objects[0].is_crowd
        union_later = np.zeros(image.shape[:2], bool)
        for obj in reversed(objects):
            np.testing.assert_array_equal(obj.visible, obj.full & ~union_later)
            assert len(np.unique(image[obj.visible], axis=0)) == 1
            num_occluded += int((obj.visible != obj.full).any())
            union_later |= obj.full
    assert num_occluded > 0


@pytest.mark.parametrize("polygon_prob", [0.0, 1.0])
def test_rle_and_polygons_decode_to_the_recorded_mask(polygon_prob):
    style = dataclasses.replace(STYLES["c"], polygon_prob=polygon_prob)
    rng, formats = np.random.default_rng(7), set()
    for _ in range(5):
        image, objects = draw_image(rng, style)
        height, width = image.shape[:2]
        for obj in objects:
            ann = object_annotation(rng, style, obj, 1, 1)
            formats.add(type(ann["segmentation"]).__name__)
            mask = decode_masks([ann["segmentation"]], height, width)[0]
            np.testing.assert_array_equal(mask.astype(bool), obj.visible)
            rows, cols = np.nonzero(mask)
            assert ann["area"] == len(rows)
            assert ann["bbox"] == [cols.min(), rows.min(), cols.max() - cols.min() + 1,
                                   rows.max() - rows.min() + 1]
    assert formats == ({"dict"} if polygon_prob == 0.0 else {"dict", "list"})  # occluded ones stay RLE


@pytest.mark.parametrize("style", "abcd")
def test_set_has_crowds_empties_both_formats_and_its_category_ids(style, sets):
    train, _ = sets[style]
    data = json.loads((train / "annotations.json").read_text())
    assert [c["id"] for c in data["categories"]] == CATEGORY_IDS[style]
    assert {a["category_id"] for a in data["annotations"]} <= set(CATEGORY_IDS[style])
    crowds = [a for a in data["annotations"] if a["iscrowd"]]
    assert crowds and all(isinstance(a["segmentation"], dict) for a in crowds)
    kinds = {isinstance(a["segmentation"], list) for a in data["annotations"] if not a["iscrowd"]}
    assert kinds == {True, False}
    annotated = {a["image_id"] for a in data["annotations"]}
    assert sum(image["id"] not in annotated for image in data["images"]) == 1  # round(0.06 * 20)
    sizes = {(image["height"], image["width"]) for image in data["images"]}
    low, high = STYLES[style].image_size
    assert len(sizes) == 20 and all(low <= side <= high for size in sizes for side in size)


@pytest.mark.parametrize("style", "abcd")
def test_loader_keeps_everything_and_cocoeval_scores_the_ground_truth_as_1(style, sets):
    train, _ = sets[style]
    data = json.loads((train / "annotations.json").read_text())
    dataset = CocoInstanceDataset(train / "images", train / "annotations.json", transform=EvalTransform(64),
                                  keep_empty=True)
    assert dataset.problems == [] and len(dataset) == 20
    assert dataset.category_ids == CATEGORY_IDS[style]
    assert len(dataset.coco.dataset["annotations"]) == len(data["annotations"])
    assert len(CocoInstanceDataset(train / "images", train / "annotations.json",
                                   transform=EvalTransform(64)).records) == 19  # without the empty one
    coco = quiet_coco(train / "annotations.json")
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0,
                "segmentation": coco.annToRLE(a)} for a in data["annotations"] if not a["iscrowd"]]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco, coco.loadRes(results), "segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)


def test_command_line(tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["--out", str(out), "--style", "b", "--train", "2", "--val", "1", "--seed", "4"]) == 0
    assert capsys.readouterr().out == f"train: {out / 'train'}\nval: {out / 'val'}\n"
    assert len(quiet_coco(tmp_path / "set" / "val" / "annotations.json").getImgIds()) == 1
    assert main(["--out", str(tmp_path / "x"), "--style", "z"]) == 2
    assert "unknown style 'z'" in capsys.readouterr().err
