"""The synthetic shapes dataset: real COCO json, requested counts, deterministic, skipped when made."""
import contextlib
import io

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from yolact.data import CocoInstanceDataset, EvalTransform
from yolact.data.shapes import CLASS_NAMES, main, make_shapes_dataset

OPTIONS = dict(num_train=8, num_val=3, image_size=96, seed=5, min_size=16, max_size=48)


def load_coco(path):
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def test_json_loads_with_pycocotools_and_has_what_was_asked(tmp_path):
    paths = make_shapes_dataset(tmp_path / "shapes", **OPTIONS)
    for annotation_file, image_dir, count in ((paths.train_annotations, paths.train_images, 8),
                                              (paths.val_annotations, paths.val_images, 3)):
        coco = load_coco(annotation_file)
        assert len(coco.getImgIds()) == count and len(list(image_dir.glob("*.jpg"))) == count
        names = [c["name"] for c in coco.loadCats(coco.getCatIds())]
        assert names == list(CLASS_NAMES) == ["circle", "square", "triangle"]
        for image in coco.loadImgs(coco.getImgIds()):
            assert (image["height"], image["width"]) == (96, 96)
            assert (image_dir / image["file_name"]).is_file()
            assert 1 <= len(coco.getAnnIds(imgIds=image["id"])) <= 4
        for ann in coco.loadAnns(coco.getAnnIds()):
            mask = coco.annToMask(ann)
            rle = mask_utils.encode(np.asfortranarray(mask))
            assert ann["iscrowd"] == 0 and ann["area"] == mask.sum() > 0
            assert ann["bbox"] == mask_utils.toBbox(rle).tolist()
            assert max(ann["bbox"][2:]) <= 48 + 1  # no larger than requested
    dataset = CocoInstanceDataset(paths.train_images, paths.train_annotations,
                                  transform=EvalTransform(input_size=96))
    assert dataset.problems == [] and len(dataset) == 8 and dataset.class_names == list(CLASS_NAMES)


def test_same_seed_same_files_and_other_seed_differs(tmp_path):
    first = make_shapes_dataset(tmp_path / "a", **OPTIONS)
    second = make_shapes_dataset(tmp_path / "b", **OPTIONS)
    assert first.train_annotations.read_bytes() == second.train_annotations.read_bytes()
    for image in first.train_images.glob("*.jpg"):
        assert image.read_bytes() == (second.train_images / image.name).read_bytes()
    other = make_shapes_dataset(tmp_path / "c", **dict(OPTIONS, seed=6))
    assert other.train_annotations.read_bytes() != first.train_annotations.read_bytes()


def test_existing_dataset_is_kept_unless_forced_or_changed(tmp_path):
    paths = make_shapes_dataset(tmp_path, **OPTIONS)
    marker = paths.val_images / "000001.jpg"
    original = marker.read_bytes()
    marker.write_bytes(b"left alone")
    make_shapes_dataset(tmp_path, **OPTIONS)
    assert marker.read_bytes() == b"left alone"
    make_shapes_dataset(tmp_path, **OPTIONS, force=True)
    assert marker.read_bytes() == original
    make_shapes_dataset(tmp_path, **dict(OPTIONS, num_val=2))  # other parameters: made again
    assert len(load_coco(paths.val_annotations).getImgIds()) == 2


def test_command_line(tmp_path, capsys, yolact_log):  # yolact_log restores the logger
    root = tmp_path / "cli"
    argv = ["--root", str(root), "--num-train", "2", "--num-val", "1", "--image-size", "64", "--seed", "1"]
    assert main(argv) == 0
    assert f"train_annotations: {root / 'annotations' / 'instances_train.json'}" in capsys.readouterr().out
    coco = load_coco(root / "annotations" / "instances_val.json")
    assert len(coco.getImgIds()) == 1 and coco.imgs[1]["width"] == 64


def test_impossible_options_exit_2_with_one_line(tmp_path, capsys, yolact_log):
    assert main(["--root", str(tmp_path), "--num-train", "0"]) == 2
    assert capsys.readouterr().err == "error: shapes: num_train and num_val must be at least 1 (got 0, 60)\n"
    assert not (tmp_path / "annotations").exists()
