"""Per-class standard NMS against torchvision's results in the fixture and a slow greedy loop."""
import pytest
import torch

from yolact.postprocess.standard_nms import standard_nms


@pytest.fixture(scope="module")
def fastnms_fixture(reference):
    return reference.fastnms


def python_iou(box_a, box_b) -> float:
    inter_w = max(0.0, min(box_a[2], box_b[2]) - max(box_a[0], box_b[0]))
    inter_h = max(0.0, min(box_a[3], box_b[3]) - max(box_a[1], box_b[1]))
    inter = inter_w * inter_h
    area = lambda box: (box[2] - box[0]) * (box[3] - box[1])  # noqa: E731
    return inter / (area(box_a) + area(box_b) - inter)


def greedy_nms(boxes, scores, iou_threshold, conf_threshold, top_k, max_detections):
    """Per class: filter by score, keep the top_k, then keep a box only if no *kept* box of its
    class overlaps it by more than the threshold. -> [(score, class, index)] by score."""
    box_list, found = boxes.tolist(), []
    for label, class_scores in enumerate(scores.tolist()):
        ranked = sorted((a for a in range(len(class_scores))
                         if conf_threshold is None or class_scores[a] > conf_threshold),
                        key=lambda a: -class_scores[a])[:top_k]
        kept = []
        for index in ranked:
            if all(python_iou(box_list[other], box_list[index]) <= iou_threshold for other in kept):
                kept.append(index)
        found += [(class_scores[index], label, index) for index in kept]
    found.sort(key=lambda item: -item[0])
    return found if max_detections is None else found[:max_detections]


def as_tuples(result):
    return list(zip(result["scores"].tolist(), result["labels"].tolist(), result["indices"].tolist()))


def test_matches_torchvision_results_of_the_fixture(fastnms_fixture):
    # The fixture's standard NMS took the per-class top 200 without a per-class score filter.
    candidates = fastnms_fixture["candidates"]
    for cap, expected in [(100, fastnms_fixture["standard_nms_torchvision"]),
                          (None, fastnms_fixture["standard_nms_torchvision_uncapped"])]:
        found = standard_nms(candidates["boxes"], candidates["scores"], candidates["masks"],
                             iou_threshold=0.5, conf_threshold=None, top_k=200, max_detections=cap)
        assert torch.equal(found["labels"], expected["class"])
        assert torch.equal(found["indices"], expected["cand_idx"])
        assert torch.allclose(found["scores"], expected["score"], rtol=0, atol=1e-6)
        assert torch.allclose(found["boxes"], expected["box"], rtol=0, atol=1e-5)


def test_per_class_threshold_on_the_fixture(fastnms_fixture, reference):
    """Greedy NMS handles boxes in score order, so boxes under the threshold never suppress one
    above it: filtering before NMS equals filtering the unfiltered result (each class has at most
    163 candidates above 0.05 at 550, 64 at 192, all inside its top 200)."""
    candidates = fastnms_fixture["candidates"]
    assert (candidates["scores"] > 0.05).sum(dim=1).max() == reference.max_candidates_per_class
    found = standard_nms(candidates["boxes"], candidates["scores"], candidates["masks"], max_detections=None)
    unfiltered = standard_nms(candidates["boxes"], candidates["scores"], candidates["masks"],
                              conf_threshold=None, max_detections=None)
    above = unfiltered["scores"] > 0.05
    assert 0 < found["scores"].numel() < unfiltered["scores"].numel()
    # Compared as sets: a few scores of different classes are equal, and their order is free.
    pairs = lambda labels, indices: set(zip(labels.tolist(), indices.tolist()))  # noqa: E731
    assert pairs(found["labels"], found["indices"]) == pairs(unfiltered["labels"][above],
                                                           unfiltered["indices"][above])
    assert torch.equal(found["scores"], unfiltered["scores"][above])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("iou_threshold", [0.25, 0.5, 0.75])  # exact in float32 and float64
def test_matches_a_slow_greedy_loop(seed, iou_threshold):
    generator = torch.Generator().manual_seed(seed)
    centers = torch.randint(4, 13, (40, 2), generator=generator)
    half_sizes = torch.randint(1, 5, (40, 2), generator=generator)
    boxes = torch.cat([centers - half_sizes, centers + half_sizes], dim=1).float() / 16  # grid corners
    ranks = torch.randperm(120, generator=generator).float()
    scores = ((ranks + 1) / 121).view(3, 40)  # distinct, some under the 0.05 threshold
    coeffs = torch.randn(40, 4, generator=generator)
    for conf_threshold, top_k, cap in [(0.05, 200, 100), (0.2, 10, 15), (None, None, None)]:
        found = standard_nms(boxes, scores, coeffs, iou_threshold=iou_threshold,
                             conf_threshold=conf_threshold, top_k=top_k, max_detections=cap)
        assert as_tuples(found) == greedy_nms(boxes, scores, iou_threshold, conf_threshold, top_k, cap)
        assert torch.equal(found["mask_coeffs"], coeffs[found["indices"]])
        assert torch.equal(found["boxes"], boxes[found["indices"]])


def test_differs_from_fast_nms_where_a_suppressed_box_would_suppress():
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.25, 0.0, 1.25, 1.0], [0.5, 0.0, 1.5, 1.0]])
    found = standard_nms(boxes, torch.tensor([[0.9, 0.8, 0.7]]), torch.zeros(3, 2))
    assert found["indices"].tolist() == [0, 2]


def test_empty_input():
    found = standard_nms(torch.zeros(0, 4), torch.zeros(80, 0), torch.zeros(0, 32))
    assert found["boxes"].shape == (0, 4) and found["mask_coeffs"].shape == (0, 32)
    assert found["labels"].shape == (0,) and found["labels"].dtype == torch.int64
    assert found["scores"].shape == (0,)
    nothing_above = standard_nms(torch.rand(5, 4), torch.full((3, 5), 0.01), torch.zeros(5, 2))
    assert nothing_above["scores"].numel() == 0 and nothing_above["boxes"].shape == (0, 4)
