"""CocoInstanceDataset: exact targets for polygons, RLE, crowds, category mapping, empty images."""
import cv2
import pytest
import torch
from coco_builders import rect_rle

from yolact.data import CocoInstanceDataset, EvalTransform, SampleKey, eval_transform
from yolact.errors import YolactError

CATEGORIES = [{"id": 90, "name": "zebra"}, {"id": 1, "name": "person"}, {"id": 5, "name": "airplane"}]
IMAGES = [(7, "a.png", 48, 48), (8, "empty.png", 30, 30), (9, "crowd_only.png", 30, 30)]
ANNOTATIONS = [
    {"id": 101, "image_id": 7, "category_id": 5, "iscrowd": 0, "bbox": [10, 8, 20, 16], "area": 320,
     "segmentation": [[10, 8, 30, 8, 30, 24, 10, 24]]},
    {"id": 102, "image_id": 7, "category_id": 1, "iscrowd": 0, "bbox": [40, 5, 8, 10], "area": 80,
     "segmentation": rect_rle(48, 48, 40, 5, 48, 15, compressed=False)},
    {"id": 103, "image_id": 7, "category_id": 90, "iscrowd": 0, "bbox": [2, 30, 6, 8], "area": 48,
     "segmentation": rect_rle(48, 48, 2, 30, 8, 38, compressed=True)},
    {"id": 104, "image_id": 7, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 20, 20], "area": 400,
     "segmentation": rect_rle(48, 48, 0, 0, 20, 20, compressed=True)},
    {"id": 105, "image_id": 9, "category_id": 5, "iscrowd": 1, "bbox": [3, 4, 10, 6], "area": 60,
     "segmentation": rect_rle(30, 30, 3, 4, 13, 10, compressed=False)},
]


def make_dataset(coco_folder, input_size=48, **kwargs):
    image_dir, json_path = coco_folder(IMAGES, ANNOTATIONS, CATEGORIES)
    return CocoInstanceDataset(image_dir, json_path, transform=EvalTransform(input_size=input_size), **kwargs)


def test_categories_sorted_by_id_and_mapped_to_contiguous_labels(coco_folder):
    dataset = make_dataset(coco_folder)
    assert dataset.class_names == ["person", "airplane", "zebra"]
    assert dataset.category_ids == [1, 5, 90]
    assert dataset.problems == []
    assert sorted(dataset.coco.getAnnIds()) == [101, 102, 103, 104, 105]


def test_eval_targets_are_exact(coco_folder):
    dataset = make_dataset(coco_folder)
    assert dataset.image_ids == [7] and len(dataset) == 1  # empty and crowd-only images skipped
    image, target = dataset[0]
    assert target["labels"].tolist() == [1, 0, 2]
    expected_boxes = torch.tensor([[10, 8, 30, 24], [40, 5, 48, 15], [2, 30, 8, 38]]).float() / 48
    assert target["boxes"].dtype == torch.float32 and torch.equal(target["boxes"], expected_boxes)
    assert target["masks"].dtype == torch.uint8 and target["masks"].shape == (3, 48, 48)
    assert target["masks"].sum(dim=(1, 2)).tolist() == [320, 80, 48]
    for mask, ann_id in zip(target["masks"], (101, 102, 103)):  # pycocotools as the reference
        assert torch.equal(mask, torch.from_numpy(dataset.coco.annToMask(dataset.coco.anns[ann_id])))
    assert torch.equal(target["crowd_boxes"], torch.tensor([[0, 0, 20, 20]], dtype=torch.float32) / 48)
    assert target["image_id"] == 7 and target["orig_size"] == (48, 48)
    expected_image = eval_transform(cv2.imread(str(dataset.image_dir / "a.png")), 48)
    assert torch.equal(image, expected_image)


def test_eval_masks_are_resized_to_the_input(coco_folder):
    dataset = make_dataset(coco_folder, input_size=96)
    _, target = dataset[0]
    assert target["masks"].shape == (3, 96, 96)
    # An exact 2x bilinear upsampling of a 0/1 mask doubles each side.
    assert target["masks"].sum(dim=(1, 2)).tolist() == [1280, 320, 192]
    mask = dataset.coco.annToMask(dataset.coco.anns[101])
    expected = cv2.resize(mask, (96, 96), interpolation=cv2.INTER_LINEAR)
    assert torch.equal(target["masks"][0], torch.from_numpy(expected))
    assert torch.allclose(target["boxes"][0] * 96, torch.tensor([20.0, 16.0, 60.0, 48.0]))


def test_keep_empty_keeps_background_only_images(coco_folder):
    dataset = make_dataset(coco_folder, keep_empty=True)
    assert dataset.image_ids == [7, 8, 9]
    _, empty = dataset[1]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)
    assert empty["masks"].shape == (0, 48, 48) and empty["crowd_boxes"].shape == (0, 4)
    assert empty["image_id"] == 8 and empty["orig_size"] == (30, 30)
    _, crowd_only = dataset[2]
    assert crowd_only["labels"].numel() == 0
    assert torch.allclose(crowd_only["crowd_boxes"], torch.tensor([[3, 4, 13, 10]], dtype=torch.float32) / 30)


def test_index_out_of_range_and_sample_keys(coco_folder):
    dataset = make_dataset(coco_folder)
    with pytest.raises(IndexError):
        dataset[1]
    image, target = dataset[SampleKey(0, epoch=3, seed=5)]
    assert target["image_id"] == 7 and torch.equal(image, dataset[0][0])


def _corrupt_folder(coco_folder, *, good_is_corrupt=False):
    images = [(1, "good.png", 32, 32), (2, "bad.jpg", 32, 32)]
    annotations = [{"id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "bbox": [4, 4, 8, 8], "area": 64,
                    "segmentation": [[4, 4, 12, 4, 12, 12, 4, 12]]} for i in (1, 2)]
    files = {"bad.jpg": b"\xff\xd8\xff\xe0 this is not a jpeg"}
    if good_is_corrupt:
        files["good.png"] = b"garbage"
    return coco_folder(images, annotations, [{"id": 1, "name": "thing"}], files=files)


def test_corrupt_image_is_skipped_with_a_log(coco_folder, yolact_log):
    image_dir, json_path = _corrupt_folder(coco_folder)
    dataset = CocoInstanceDataset(image_dir, json_path, transform=EvalTransform(input_size=32))
    assert dataset.image_ids == [1, 2]  # only decoding can tell
    _, target = dataset[1]
    assert target["image_id"] == 1
    message = f"{image_dir / 'bad.jpg'} (image 2): cannot be decoded, skipped (another image is used)"
    assert message in yolact_log.messages


def test_only_corrupt_images_raise(coco_folder):
    image_dir, json_path = _corrupt_folder(coco_folder, good_is_corrupt=True)
    dataset = CocoInstanceDataset(image_dir, json_path, transform=EvalTransform(input_size=32),
                                  max_load_tries=5)
    with pytest.raises(YolactError, match="none of 5 images tried could be decoded"):
        dataset[0]
