"""The confusion matrix: class-agnostic matching, a wrong class is a confusion, misses and false positives."""
import numpy as np
from pycocotools.coco import COCO

from yolact.engine.evaluation.confusion import confusion_matrix


def ground_truth():
    coco = COCO()
    coco.dataset = {"images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
                    "categories": [{"id": 5, "name": "a"}, {"id": 7, "name": "b"}],
                    "annotations": [
                        {"id": 1, "image_id": 1, "category_id": 5, "bbox": [0, 0, 20, 20], "area": 400, "iscrowd": 0},
                        {"id": 2, "image_id": 1, "category_id": 7, "bbox": [50, 50, 20, 20], "area": 400, "iscrowd": 0},
                        {"id": 3, "image_id": 2, "category_id": 7, "bbox": [10, 10, 30, 30], "area": 900, "iscrowd": 0},
                        {"id": 4, "image_id": 2, "category_id": 5, "bbox": [60, 0, 30, 30], "area": 900, "iscrowd": 1}]}
    coco.createIndex()
    return coco


def det(image_id, category_id, bbox, score):
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score}


def test_counts_by_hand():
    results = [det(1, 5, [1, 1, 20, 20], 0.9),      # a on a: right
               det(1, 5, [0, 0, 20, 20], 0.8),      # a again on the same a: a false positive
               det(1, 5, [50, 50, 20, 20], 0.7),    # a on b: a confusion
               det(2, 7, [80, 80, 10, 10], 0.6),    # b on nothing: false positive; b of image 2 missed
               det(2, 7, [10, 10, 30, 30], 0.1)]    # below the score threshold: ignored
    matrix = confusion_matrix(ground_truth(), results, [1, 2], [5, 7])
    # rows predicted a, b, background; columns true a, b, background
    assert np.array_equal(matrix, [[1, 1, 1], [0, 0, 1], [0, 1, 0]])
    assert np.array_equal(confusion_matrix(ground_truth(), [], [1, 2], [5, 7]), [[0, 0, 0], [0, 0, 0], [1, 2, 0]])
