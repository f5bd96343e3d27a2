"""evaluate() on a tiny real COCO dataset with a fake model whose detections are the ground truth."""
import contextlib
import io
import json
import math
from collections import deque

import cv2
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from tests.engine.evaluation.test_coco_results import (
    CATEGORY_IDS, IMAGES, OBJECTS, gt_detections, independent_stats, tiny_coco_dict,
)
from yolact.data.coco import CocoInstanceDataset
from yolact.data.collate import collate_detections
from yolact.data.transforms import EvalTransform
from yolact.engine.evaluation.coco_results import STAT_NAMES, per_class_ap, write_results_json
from yolact.engine.evaluation.evaluator import EvalResult, evaluate
from yolact.engine.evaluation.inference import predict_batch
from yolact.errors import YolactError

INPUT_SIZE = 32


class RecordingModel(torch.nn.Module):
    """Stands for the network: remembers its mode and grad state, returns an opaque dict."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(3, 3))
        self.calls = []

    def forward(self, images):
        self.calls.append((self.training, torch.is_grad_enabled(), tuple(images.shape)))
        pooled = images.mean(dim=(2, 3))  # (N, 3)
        return {"features": pooled @ self.weight, "count": images.shape[0]}


class QueuePostProcessor:
    """Returns the prepared detections of the images in loader order, checking sizes and format."""

    def __init__(self, detections_per_image, sizes_per_image):
        self.queue = deque(zip(detections_per_image, sizes_per_image))
        self.formats, self.dtypes = [], []

    def __call__(self, outputs, image_sizes, mask_format="bool"):
        self.formats.append(mask_format)
        self.dtypes.append(outputs["features"].dtype)
        assert outputs["count"] == len(image_sizes)
        batch = [self.queue.popleft() for _ in image_sizes]
        assert [tuple(size) for _, size in batch] == [tuple(size) for size in image_sizes]
        return [detections for detections, _ in batch]


@pytest.fixture
def tiny_dataset(tmp_path):
    """The tiny COCO of test_coco_results as files: random PNGs and the instances json."""
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    for image_id, file_name, height, width in IMAGES:
        pixels = np.random.default_rng(image_id).integers(0, 256, (height, width, 3), dtype=np.uint8)
        cv2.imwrite(str(image_dir / file_name), pixels)
    json_path = tmp_path / "instances.json"
    json_path.write_text(json.dumps(tiny_coco_dict()))
    dataset = CocoInstanceDataset(image_dir, json_path, transform=EvalTransform(input_size=INPUT_SIZE))
    return dataset, json_path



def loader_of(dataset, batch_size):
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0,
                                       collate_fn=collate_detections)


def perfect_postprocessor(dataset, image_ids=None):
    coco = dataset.coco
    image_ids = dataset.image_ids if image_ids is None else image_ids
    sizes = [(coco.imgs[i]["height"], coco.imgs[i]["width"]) for i in image_ids]
    return QueuePostProcessor([gt_detections(coco, i) for i in image_ids], sizes)


def test_ground_truth_detections_give_ap_one(tiny_dataset):
    dataset, _ = tiny_dataset
    assert dataset.category_ids == CATEGORY_IDS and dataset.class_names == ["triangle", "square", "unused"]
    model = RecordingModel().train()
    postprocessor = perfect_postprocessor(dataset)
    result = evaluate(model, postprocessor, loader_of(dataset, 3), dataset, device=torch.device("cpu"),
                      progress=False)
    assert isinstance(result, EvalResult)
    assert model.training  # restored
    assert model.calls == [(False, False, (3, 3, INPUT_SIZE, INPUT_SIZE)),
                           (False, False, (1, 3, INPUT_SIZE, INPUT_SIZE))]
    assert postprocessor.formats == ["rle", "rle"] and not postprocessor.queue
    assert result.image_ids == [1, 2, 5, 9] and len(result.results) == len(OBJECTS)
    for prefix, stats in (("bbox", result.box_stats), ("segm", result.mask_stats)):
        assert len(stats) == 12 and stats[:3] == [1.0, 1.0, 1.0]
        assert [result.metrics[f"{prefix}/{name}"] for name in STAT_NAMES] == stats
        assert result.metrics[f"{prefix}/AP"] == 1.0
    first_line = " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000"
    assert first_line in result.summary_text.splitlines()
    assert result.per_class_table.splitlines()[-1].split()[-2:] == ["1.0000", "1.0000"]


def test_reported_ap_equals_cocoeval_on_the_written_json(tiny_dataset, tmp_path):
    dataset, json_path = tiny_dataset
    rng = np.random.default_rng(1)
    detections, sizes = [], []
    for image_id in dataset.image_ids:
        found = gt_detections(dataset.coco, image_id)
        jitter = rng.uniform(-4, 4, (len(found["boxes"]), 4)).astype(np.float32)
        found["boxes"] = found["boxes"] + torch.from_numpy(jitter)
        found["scores"] = torch.from_numpy(rng.uniform(0.05, 1.0, len(found["scores"])).astype(np.float32))
        found["labels"][-1] = 1 - found["labels"][-1]
        detections.append(found)
        sizes.append((dataset.coco.imgs[image_id]["height"], dataset.coco.imgs[image_id]["width"]))
    result = evaluate(RecordingModel(), QueuePostProcessor(detections, sizes), loader_of(dataset, 2), dataset,
                      device=torch.device("cpu"), progress=False)
    results_path = write_results_json(tmp_path / "results.json", result.results)

    coco_gt = COCO(str(json_path))  # the json from disk, not the dataset's copy
    with contextlib.redirect_stdout(io.StringIO()):
        loaded = coco_gt.loadRes(str(results_path))
    assert len(loaded.anns) == len(result.results)
    written = json.loads(results_path.read_text())
    box_stats, box_eval = independent_stats(coco_gt, written, "bbox")
    mask_stats, mask_eval = independent_stats(coco_gt, written, "segm")
    assert result.box_stats == box_stats and result.mask_stats == mask_stats
    assert 0.0 < box_stats[0] < 1.0 and 0.0 < mask_stats[0] < 1.0
    rows = {line.split()[0]: line.split() for line in result.per_class_table.splitlines()[2:]}
    for stats, coco_eval, column in ((box_stats, box_eval, 3), (mask_stats, mask_eval, 4)):
        per_class = per_class_ap(coco_eval)
        with_gt = [per_class[3], per_class[7]]
        assert math.isnan(per_class[12]) and np.mean(with_gt) == pytest.approx(stats[0], abs=1e-12)
        assert rows["triangle"][column] == f"{per_class[3]:.4f}"
        assert rows["square"][column] == f"{per_class[7]:.4f}"
        assert rows["unused"][column] == "-" and rows["mean"][column + 1] == f"{stats[0]:.4f}"


def test_max_images_scores_only_the_processed_images(tiny_dataset):
    dataset, _ = tiny_dataset
    postprocessor = perfect_postprocessor(dataset, image_ids=dataset.image_ids[:2])
    model = RecordingModel().eval()
    result = evaluate(model, postprocessor, loader_of(dataset, 3), dataset, device=torch.device("cpu"),
                      max_images=2, progress=False)
    assert not model.training
    assert [shape for _, _, shape in model.calls] == [(2, 3, INPUT_SIZE, INPUT_SIZE)]  # the batch of 3 is cut
    assert result.image_ids == [1, 2] and {r["image_id"] for r in result.results} == {1, 2}
    # images 5 and 9 hold undetected objects, yet AP is 1: only images 1 and 2 are scored
    assert result.metrics["bbox/AP"] == 1.0 and result.metrics["segm/AP"] == 1.0
    rows = {line.split()[0]: line.split() for line in result.per_class_table.splitlines()[2:]}
    assert rows["triangle"][2] == "2" and rows["square"][2] == "2"  # GT counted on images 1 and 2 only


def test_no_detections_is_reported_with_zero_ap(tiny_dataset):
    dataset, _ = tiny_dataset
    empty = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64),
             "scores": torch.zeros(0), "masks": []}
    sizes = [(dataset.coco.imgs[i]["height"], dataset.coco.imgs[i]["width"]) for i in dataset.image_ids]
    postprocessor = QueuePostProcessor([empty] * len(sizes), sizes)
    result = evaluate(RecordingModel(), postprocessor, loader_of(dataset, 2), dataset,
                      device=torch.device("cpu"), progress=False)
    assert result.results == []
    assert result.box_stats[:3] == [0.0, 0.0, 0.0] and result.mask_stats[:3] == [0.0, 0.0, 0.0]
    assert "no detections at all" in result.summary_text
    assert result.per_class_table.splitlines()[-1].split()[-2:] == ["0.0000", "0.0000"]


def test_images_without_ground_truth_give_results_only(tmp_path, tiny_dataset):
    dataset, _ = tiny_dataset
    info_only = tmp_path / "image_info.json"
    ground_truth = tiny_coco_dict()
    info_only.write_text(json.dumps({key: ground_truth[key] for key in ("images", "categories")}))
    test_set = CocoInstanceDataset(dataset.image_dir, info_only, keep_empty=True,
                                   transform=EvalTransform(input_size=INPUT_SIZE))
    result = evaluate(RecordingModel(), perfect_postprocessor(dataset), loader_of(test_set, 2), test_set,
                      device=torch.device("cpu"), progress=False)
    assert result.image_ids == [1, 2, 5, 9] and len(result.results) == len(OBJECTS)
    assert result.metrics == {} and result.box_stats is None and result.summary_text == ""
    assert {r["category_id"] for r in result.results} == {3, 7}


def test_nothing_processed_is_an_error(tiny_dataset):
    dataset, _ = tiny_dataset
    with pytest.raises(YolactError, match="no image"):
        evaluate(RecordingModel(), perfect_postprocessor(dataset), loader_of(dataset, 2), dataset,
                 device=torch.device("cpu"), max_images=0, progress=False)


def test_autocast_outputs_reach_the_postprocessor_in_float32():
    model = RecordingModel()
    postprocessor = QueuePostProcessor([{"boxes": torch.zeros((0, 4))}], [(8, 8)])
    with torch.inference_mode():
        predict_batch(model, postprocessor, torch.rand(1, 3, 8, 8), [(8, 8)], device=torch.device("cpu"),
                      mask_format="rle", amp="bf16")
    assert postprocessor.dtypes == [torch.float32]


def test_an_image_given_twice_is_scored_once(tiny_dataset, yolact_log):
    """The dataset replaces an undecodable image by another one, which may come again later."""
    dataset, _ = tiny_dataset
    batches = [collate_detections([dataset[0], dataset[1]]), collate_detections([dataset[0]])]
    result = evaluate(RecordingModel(), perfect_postprocessor(dataset, image_ids=[1, 2, 1]), batches, dataset,
                      device=torch.device("cpu"), progress=False)
    assert result.image_ids == [1, 2] and len(result.results) == 4
    assert result.metrics["segm/AP"] == 1.0
    assert "image 1 came twice" in yolact_log.text
