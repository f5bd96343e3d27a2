"""Up-front validation: every problem reported exactly, bad entries dropped, unusable files refused."""
import json
import pytest
import torch
from coco_builders import rect_rle

from yolact.data import CocoInstanceDataset, EvalTransform
from yolact.errors import YolactError

SQUARE = [[4, 4, 20, 4, 20, 20, 4, 20]]


def ann(ann_id, image_id, category_id=1, bbox=(4, 4, 16, 16), segmentation=SQUARE, **extra):
    return dict({"id": ann_id, "image_id": image_id, "category_id": category_id, "iscrowd": 0,
                 "bbox": list(bbox), "area": 256, "segmentation": segmentation}, **extra)


IMAGES = [(1, "one.png", 40, 40), (2, "missing.png", 40, 40), (3, "three.png", 40, 40)]
ANNOTATIONS = [
    ann(1, 1),
    ann(2, 99),
    ann(3, 1, category_id=7),
    ann(4, 1, segmentation=[[1, 2, 3, 4]]),
    ann(5, 1, segmentation=SQUARE + [[5, 5, 6, 6]]),
    ann(6, 1, bbox=(50, 50, 5, 5)),
    ann(7, 1, bbox=(30, 30, 20, 20), segmentation=[[30, 30, 40, 30, 40, 40, 30, 40]]),
    ann(8, 1, bbox=(5, 5, 0, 3)),
    ann(9, 2),
    ann(10, 3, segmentation=rect_rle(20, 20, 0, 0, 4, 4, compressed=True)),
    ann(12, 1, segmentation={"size": [40, 40], "counts": [5, 10]}),
    ann(13, 1, segmentation=[["a", 1, 2, 3, 4, 5]]),
    {"image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [4, 4, 16, 16], "segmentation": SQUARE},
]


def test_every_problem_is_reported_and_dropped(coco_folder, yolact_log):
    image_dir, json_path = coco_folder(IMAGES, ANNOTATIONS, [{"id": 1, "name": "thing"}],
                                       files={"missing.png": None})
    dataset = CocoInstanceDataset(image_dir, json_path, transform=EvalTransform(input_size=40))
    where = "instances.json: image 1 (one.png) annotation"
    assert dataset.problems == [
        f"instances.json: image 2 (missing.png): image file not found in {image_dir}, image dropped",
        "instances.json: image 99 (?) annotation 2: unknown image id, annotation dropped",
        f"{where} 3: category 7 is not in 'categories', annotation dropped",
        f"{where} 4: no polygon with at least 3 points (1 polygon(s) with fewer than 3 points), "
        "annotation dropped",
        f"{where} 5: 1 polygon(s) with fewer than 3 points removed",
        f"{where} 6: box [50.0, 50.0, 5.0, 5.0] lies outside the 40x40 image, annotation dropped",
        f"{where} 7: box [30.0, 30.0, 20.0, 20.0] extends 10 px outside the 40x40 image, clipped",
        f"{where} 8: zero-area box (w=0, h=3), annotation dropped",
        "instances.json: image 3 (three.png) annotation 10: RLE size [20, 20] differs from the image size "
        "[40, 40], annotation dropped",
        f"{where} 12: RLE counts do not add up to 40x40 pixels, annotation dropped",
        f"{where} 13: no polygon with at least 3 points (1 malformed polygon(s)), annotation dropped",
        "instances.json: annotation #12 of image 1 has no integer id, given id 14",
    ]
    for problem in dataset.problems:
        assert problem in yolact_log.messages
    assert "instances.json: 12 problems, 9 annotations dropped" in yolact_log.messages
    # Image 2 has no file; image 3 lost its only annotation.
    assert dataset.image_ids == [1]
    assert sorted(dataset.coco.getAnnIds()) == [1, 5, 7, 14]
    assert dataset.coco.anns[5]["segmentation"] == SQUARE
    assert dataset.coco.anns[14]["area"] == 256.0 and dataset.coco.anns[14]["iscrowd"] == 0
    _, target = dataset[0]
    expected = torch.tensor([[4, 4, 20, 20], [4, 4, 20, 20], [30, 30, 40, 40], [4, 4, 20, 20]]) / 40
    assert torch.equal(target["boxes"], expected.float())
    assert target["masks"].sum(dim=(1, 2)).tolist() == [256, 256, 100, 256]


def test_small_overshoot_is_clipped_silently(coco_folder):
    annotations = [ann(1, 1, bbox=(4, 4, 36.5, 16), segmentation=[[4, 4, 40, 4, 40, 20, 4, 20]])]
    image_dir, json_path = coco_folder(IMAGES[:1], annotations, [{"id": 1, "name": "thing"}])
    dataset = CocoInstanceDataset(image_dir, json_path, transform=EvalTransform(input_size=40))
    assert dataset.problems == []
    assert torch.equal(dataset[0][1]["boxes"], torch.tensor([[4.0, 4.0, 40.0, 20.0]]) / 40)


def expect_error(message, make):
    with pytest.raises(YolactError) as error:
        make()
    assert str(error.value) == message


def test_unusable_files_raise_one_line(coco_folder, tmp_path):
    transform = EvalTransform(input_size=40)
    missing = tmp_path / "nope.json"
    expect_error(f"annotation file not found: {missing}",
                 lambda: CocoInstanceDataset(tmp_path, missing, transform=transform))

    truncated = '{"images": [{"id": 1, "file_name": "one.png"'
    image_dir, json_path = coco_folder(IMAGES[:1], [], [], json_text=truncated)
    expect_error(f"{json_path}: invalid JSON (Expecting ',' delimiter at line 1 column 45); "
                 f"is the file truncated?",
                 lambda: CocoInstanceDataset(image_dir, json_path, transform=transform))

    json_path.write_text(json.dumps({"images": [], "annotations": [],
                                     "categories": [{"id": 1, "name": "a"}]}))
    expect_error(f"{json_path}: no images (the 'images' list is missing or empty)",
                 lambda: CocoInstanceDataset(image_dir, json_path, transform=transform))

    json_path.write_text(json.dumps({"images": [{"id": 1, "file_name": "one.png", "height": 40, "width": 40}],
                                     "annotations": []}))
    expect_error(f"{json_path}: no categories (the 'categories' list is missing or empty)",
                 lambda: CocoInstanceDataset(image_dir, json_path, transform=transform))

    json_path.write_text(json.dumps({"images": [{"id": 1, "file_name": "one.png", "height": 40, "width": 40}],
                                     "annotations": [ann(1, 1, bbox=(4, 4, 0, 0))],
                                     "categories": [{"id": 1, "name": "a"}]}))
    expect_error(f"{json_path}: no usable image (1 listed, 0 dropped, 1 without objects)",
                 lambda: CocoInstanceDataset(image_dir, json_path, transform=transform))

    expect_error(f"image folder not found: {tmp_path / 'absent'} (images of {json_path})",
                 lambda: CocoInstanceDataset(tmp_path / "absent", json_path, transform=transform))
