"""COCO results records, the atomic json writer and COCOeval, checked against pycocotools."""
import contextlib
import io
import json
import math

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from yolact.engine.evaluation.coco_results import (
    detections_to_coco_results, encode_masks, has_ground_truth, per_class_ap, per_class_table, run_coco_eval,
    summary_text, write_results_json,
)

# Categories with non-contiguous ids in unsorted order: labels follow the sorted ids
# (0 -> 3 "triangle", 1 -> 7 "square", 2 -> 12 "unused", which has no object).
CATEGORIES = [{"id": 7, "name": "square"}, {"id": 3, "name": "triangle"}, {"id": 12, "name": "unused"}]
CATEGORY_IDS = [3, 7, 12]
# (image id, file name, height, width)
IMAGES = [(1, "a.png", 48, 64), (2, "b.png", 40, 40), (5, "c.png", 60, 50), (9, "d.png", 36, 44)]
# (image id, category id, polygon [x0, y0, x1, y1, ...])
OBJECTS = [
    (1, 7, [4, 4, 30, 4, 30, 28, 4, 28]),
    (1, 3, [36, 40, 60, 40, 48, 10]),
    (1, 7, [40, 2, 60, 2, 60, 9, 40, 9]),
    (2, 3, [2, 30, 30, 30, 16, 4]),
    (5, 7, [10, 12, 44, 12, 44, 55, 10, 55]),
    (5, 3, [1, 1, 9, 1, 5, 9]),
    (9, 7, [20, 5, 40, 5, 40, 30, 20, 30]),
]


def tiny_coco_dict():
    """A COCO instances dict of the images and polygon objects above (areas and boxes exact)."""
    sizes = {image_id: (height, width) for image_id, _, height, width in IMAGES}
    annotations = []
    for ann_id, (image_id, category_id, polygon) in enumerate(OBJECTS, start=1):
        height, width = sizes[image_id]
        rle = mask_utils.merge(mask_utils.frPyObjects([polygon], height, width))
        xs, ys = polygon[0::2], polygon[1::2]
        annotations.append({"id": ann_id, "image_id": image_id, "category_id": category_id,
                            "segmentation": [polygon], "area": float(mask_utils.area(rle)),
                            "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)], "iscrowd": 0})
    images = [{"id": i, "file_name": f, "height": h, "width": w} for i, f, h, w in IMAGES]
    return {"images": images, "annotations": annotations, "categories": CATEGORIES}


def coco_from_dict(data) -> COCO:
    coco = COCO()
    coco.dataset = json.loads(json.dumps(data))
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def gt_detections(coco: COCO, image_id: int, *, masks_as: str = "rle"):
    """The ground truth of one image as post-processor output (score 1, labels 0-based)."""
    anns = [a for a in coco.imgToAnns[image_id] if not a["iscrowd"]]
    xywh = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
    boxes = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)  # (K, 4) xyxy
    labels = torch.tensor([CATEGORY_IDS.index(a["category_id"]) for a in anns], dtype=torch.int64)
    info = coco.imgs[image_id]
    masks = torch.from_numpy(np.stack([coco.annToMask(a) for a in anns]).astype(bool)) if anns else \
        torch.zeros((0, info["height"], info["width"]), dtype=torch.bool)
    return {"boxes": boxes, "labels": labels, "scores": torch.ones(len(anns)),
            "masks": encode_masks(masks) if masks_as == "rle" else masks}


def independent_stats(coco_gt: COCO, results, iou_type: str, image_ids=None):
    """COCOeval run by hand, the documented way (for segm the box is removed first)."""
    results = json.loads(json.dumps(results))
    if iou_type == "segm":
        for record in results:
            record.pop("bbox", None)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval = COCOeval(coco_gt, coco_gt.loadRes(results), iou_type)
        if image_ids is not None:
            coco_eval.params.imgIds = list(image_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return [float(v) for v in coco_eval.stats], coco_eval


def test_records_map_boxes_categories_and_masks():
    masks = np.zeros((3, 10, 12), bool)
    masks[0, 2:5, 3:9] = True
    masks[2, 0:10, 0:1] = True
    detections = {"boxes": torch.tensor([[3.0, 2.0, 9.0, 5.0], [4.0, 4.0, 4.0, 8.0], [0.0, 0.0, 1.5, 10.0]]),
                  "labels": torch.tensor([2, 0, 1]), "scores": torch.tensor([0.9, 0.8, 0.25]),
                  "masks": torch.from_numpy(masks)}
    records = detections_to_coco_results(detections, image_id=42, category_ids=CATEGORY_IDS)
    # the zero-width box (second detection) is skipped
    assert [r["category_id"] for r in records] == [12, 7]
    assert [r["bbox"] for r in records] == [[3.0, 2.0, 6.0, 3.0], [0.0, 0.0, 1.5, 10.0]]
    assert [r["score"] for r in records] == [pytest.approx(0.9), pytest.approx(0.25)]
    assert all(r["image_id"] == 42 and isinstance(r["segmentation"]["counts"], str) for r in records)
    assert np.array_equal(mask_utils.decode(records[0]["segmentation"]).astype(bool), masks[0])
    assert np.array_equal(mask_utils.decode(records[1]["segmentation"]).astype(bool), masks[2])
    # RLE input with bytes counts gives the same records; no category map means label + 1
    bytes_rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    as_rle = dict(detections, masks=bytes_rles)
    assert detections_to_coco_results(as_rle, image_id=42, category_ids=CATEGORY_IDS) == records
    half = dict(detections, boxes=detections["boxes"].bfloat16(), scores=detections["scores"].bfloat16())
    assert [r["bbox"] for r in detections_to_coco_results(half, image_id=42, category_ids=CATEGORY_IDS)] == \
        [[3.0, 2.0, 6.0, 3.0], [0.0, 0.0, 1.5, 10.0]]
    plain = detections_to_coco_results(dict(detections, masks=None), image_id=1, category_ids=None)
    assert [r["category_id"] for r in plain] == [3, 2] and all("segmentation" not in r for r in plain)


def test_written_json_is_atomic_and_loads_as_results(tmp_path):
    coco = coco_from_dict(tiny_coco_dict())
    results = []
    for image_id in coco.getImgIds():
        results += detections_to_coco_results(gt_detections(coco, image_id), image_id=image_id,
                                              category_ids=CATEGORY_IDS)
    path = write_results_json(tmp_path / "out" / "results.json", results)
    assert path == tmp_path / "out" / "results.json"
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]
    assert json.loads(path.read_text()) == results
    with contextlib.redirect_stdout(io.StringIO()):
        loaded = coco.loadRes(str(path))
    assert len(loaded.anns) == len(OBJECTS)


def test_perfect_results_score_one_and_per_class_mean_is_the_ap():
    coco = coco_from_dict(tiny_coco_dict())
    results = []
    for image_id in coco.getImgIds():
        results += detections_to_coco_results(gt_detections(coco, image_id), image_id=image_id,
                                              category_ids=CATEGORY_IDS)
    for iou_type in ("bbox", "segm"):
        stats, coco_eval = run_coco_eval(coco, results, iou_type)
        assert len(stats) == 12 and stats[:3] == [1.0, 1.0, 1.0]
        per_class = per_class_ap(coco_eval)
        assert per_class[3] == 1.0 and per_class[7] == 1.0 and math.isnan(per_class[12])
        assert stats == independent_stats(coco, results, iou_type)[0]


def test_imperfect_results_match_pycocotools_and_the_per_class_table():
    coco = coco_from_dict(tiny_coco_dict())
    rng = np.random.default_rng(0)
    results = []
    for image_id in coco.getImgIds():
        detections = gt_detections(coco, image_id, masks_as="bool")
        count = len(detections["scores"])
        detections["boxes"] += torch.from_numpy(rng.uniform(-3, 3, (count, 4)).astype(np.float32))
        detections["scores"] = torch.from_numpy(rng.uniform(0.1, 1.0, count).astype(np.float32))
        detections["masks"] = torch.roll(detections["masks"], shifts=int(rng.integers(-3, 4)), dims=2)
        detections["labels"][0] = 1 - detections["labels"][0]  # one wrong class per image
        results += detections_to_coco_results(detections, image_id=image_id, category_ids=CATEGORY_IDS)
    box_stats, box_eval = run_coco_eval(coco, results, "bbox", image_ids=[1, 2, 5])
    mask_stats, mask_eval = run_coco_eval(coco, results, "segm", image_ids=[1, 2, 5])
    assert box_stats == independent_stats(coco, results, "bbox", [1, 2, 5])[0]
    assert mask_stats == independent_stats(coco, results, "segm", [1, 2, 5])[0]
    assert 0.0 < box_stats[0] < 1.0 and 0.0 < mask_stats[0] < 1.0
    for stats, coco_eval in ((box_stats, box_eval), (mask_stats, mask_eval)):
        with_gt = [ap for ap in per_class_ap(coco_eval).values() if not math.isnan(ap)]
        assert len(with_gt) == 2 and np.mean(with_gt) == pytest.approx(stats[0], abs=1e-12)
    table = per_class_table(coco, box_eval=box_eval, mask_eval=mask_eval, image_ids=[1, 2, 5]).splitlines()
    box_ap, mask_ap = per_class_ap(box_eval), per_class_ap(mask_eval)
    assert table[2].split() == ["triangle", "3", "3", f"{box_ap[3]:.4f}", f"{mask_ap[3]:.4f}"]
    assert table[3].split() == ["square", "7", "3", f"{box_ap[7]:.4f}", f"{mask_ap[7]:.4f}"]
    assert table[4].split() == ["unused", "12", "0", "-", "-"]
    assert table[5].split() == ["mean", "(2", "with", "GT)", f"{box_stats[0]:.4f}", f"{mask_stats[0]:.4f}"]


def test_segm_areas_come_from_masks_not_boxes():
    """A false positive with a small mask in a huge box counts among small objects for segm."""
    coco = coco_from_dict(tiny_coco_dict())
    results = detections_to_coco_results(gt_detections(coco, 5), image_id=5, category_ids=CATEGORY_IDS)
    stray = np.zeros((1, 60, 50), bool)
    stray[0, 40:44, 2:6] = True  # 16 pixels, far from every object
    results += detections_to_coco_results(
        {"boxes": torch.tensor([[0.0, 0.0, 50.0, 60.0]]), "labels": torch.tensor([0]),
         "scores": torch.tensor([2.0]), "masks": stray}, image_id=5, category_ids=CATEGORY_IDS)
    stats, _ = run_coco_eval(coco, results, "segm", image_ids=[5])
    assert stats == independent_stats(coco, results, "segm", [5])[0]
    assert stats[3] == 0.5  # APs: the stray mask is a small false positive ranked first (1.0 with box areas)


def test_no_detections_give_zero_ap_without_crashing():
    coco = coco_from_dict(tiny_coco_dict())
    for iou_type in ("bbox", "segm"):
        stats, coco_eval = run_coco_eval(coco, [], iou_type, image_ids=[1, 2])
        assert stats[0] == 0.0 and stats[1] == 0.0 and stats[8] == 0.0
        assert per_class_ap(coco_eval) == {3: 0.0, 7: 0.0, 12: pytest.approx(math.nan, nan_ok=True)}
        text = summary_text(coco_eval).splitlines()
        assert len(text) == 12
        assert text[0] == " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.000"


def test_ground_truth_presence():
    data = tiny_coco_dict()
    assert has_ground_truth(coco_from_dict(data))
    assert not has_ground_truth(coco_from_dict({"images": data["images"], "categories": CATEGORIES}))
