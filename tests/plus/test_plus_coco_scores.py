"""YOLACT++'s mask scores in results: COCO "segm" is scored with them and "bbox" with the box
scores, as the reference writes its two json files; drawings choose and label by mask score."""
import json

import numpy as np
import pytest
import torch

from tests.engine.evaluation.test_coco_results import (CATEGORY_IDS, coco_from_dict, gt_detections,
                                                        independent_stats, tiny_coco_dict)
from yolact.engine.evaluation.coco_results import detections_to_coco_results, encode_masks, run_coco_eval
from yolact.engine.evaluation.predictor import _drawn, _record
from yolact.utils.visualize import draw_detections


def _stray_detection(box_score: float, mask_score: float):
    """A false positive of image 5: a 16-pixel mask far from every object, in a huge box."""
    stray = np.zeros((1, 60, 50), bool)
    stray[0, 40:44, 2:6] = True
    return {"boxes": torch.tensor([[0.0, 0.0, 50.0, 60.0]]), "labels": torch.tensor([0]),
            "scores": torch.tensor([box_score]), "mask_scores": torch.tensor([mask_score]),
            "masks": torch.from_numpy(stray)}


def test_segm_is_scored_with_mask_scores_and_bbox_with_box_scores():
    coco = coco_from_dict(tiny_coco_dict())
    found = gt_detections(coco, 5)
    found["mask_scores"] = torch.full_like(found["scores"], 0.5)
    results = detections_to_coco_results(found, image_id=5, category_ids=CATEGORY_IDS)
    # first by box score, last by mask score
    stray = _stray_detection(2.0, 0.1)
    results += detections_to_coco_results(stray, image_id=5, category_ids=CATEGORY_IDS)
    assert [record["mask_score"] for record in results] == [0.5, 0.5, np.float32(0.1).item()]
    assert [record["score"] for record in results] == [1.0, 1.0, 2.0]

    as_scored = json.loads(json.dumps(results))
    for record in as_scored:
        record["score"] = record.pop("mask_score")
    segm_stats, _ = run_coco_eval(coco, results, "segm", image_ids=[5])
    assert segm_stats == independent_stats(coco, as_scored, "segm", [5])[0]
    assert segm_stats[0] == pytest.approx(1.0, abs=1e-12)  # the stray mask ranks last: no true positive falls behind it
    box_scored = [{k: v for k, v in record.items() if k != "mask_score"} for record in results]
    bbox_stats, _ = run_coco_eval(coco, results, "bbox", image_ids=[5])
    assert bbox_stats == independent_stats(coco, box_scored, "bbox", [5])[0]
    with_box_scores, _ = run_coco_eval(coco, box_scored, "segm", image_ids=[5])
    assert with_box_scores[0] < 1.0  # what box scores would have given the masks


def test_mask_scores_need_masks_and_are_absent_without_rescoring():
    coco = coco_from_dict(tiny_coco_dict())
    stray = _stray_detection(0.9, 0.3)
    boxes_only = detections_to_coco_results(dict(stray, masks=None), image_id=5, category_ids=CATEGORY_IDS)
    assert "mask_score" not in boxes_only[0] and "segmentation" not in boxes_only[0]
    plain = detections_to_coco_results(gt_detections(coco, 5), image_id=5, category_ids=CATEGORY_IDS)
    assert all("mask_score" not in record for record in plain)
    stats, _ = run_coco_eval(coco, plain, "segm", image_ids=[5])
    assert stats[0] == pytest.approx(1.0, abs=1e-12)


def test_pictures_are_drawn_and_recorded_with_mask_scores():
    image = np.full((60, 50, 3), 127, np.uint8)
    detections = _stray_detection(0.9, 0.3)  # as predict_image gives them with RLE masks
    found = {key: detections[key].numpy() for key in ("boxes", "labels", "scores", "mask_scores")}
    found["masks"] = encode_masks(detections["masks"])
    # chosen by mask score: 0.3 is under the threshold 0.5 (the box score 0.9 is not)
    assert np.array_equal(_drawn(image, found, ["thing"], 0.5, None), image)
    assert not np.array_equal(_drawn(image, found, ["thing"], 0.25, None), image)
    as_bool = dict(found, masks=detections["masks"].numpy())  # what the validation pictures draw
    assert np.array_equal(draw_detections(image, as_bool, ["thing"], score_threshold=0.5), image)
    assert not np.array_equal(draw_detections(image, as_bool, ["thing"], score_threshold=0.25), image)
    record = _record("a.png", image, found, ["thing"])
    assert record["detections"][0]["mask_score"] == np.float32(0.3).item()
    assert record["detections"][0]["score"] == np.float32(0.9).item()
