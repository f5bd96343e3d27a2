"""Fast NMS against the reference's output and against a slow per-class loop."""
import pytest
import torch
from torchvision.ops import box_iou

from yolact.postprocess.fast_nms import cross_class_fast_nms, fast_nms, max_iou_with_higher_scored


@pytest.fixture(scope="module")
def fastnms_fixture(reference):
    return reference.fastnms


def grid_boxes(num_boxes: int, generator: torch.Generator) -> torch.Tensor:
    """(num_boxes, 4) xyxy boxes with corners on a 1/16 grid, clustered so that many overlap.

    Grid corners make every IoU a ratio of small integers, so float32 and float64 agree on
    which side of the threshold it falls."""
    centers = torch.randint(4, 13, (num_boxes, 2), generator=generator)
    half_sizes = torch.randint(1, 5, (num_boxes, 2), generator=generator)
    return torch.cat([centers - half_sizes, centers + half_sizes], dim=1).float() / 16


def distinct_scores(num_classes: int, num_boxes: int, generator: torch.Generator) -> torch.Tensor:
    """(C, A) scores in (0, 1), all different (ties would make the order ambiguous)."""
    ranks = torch.randperm(num_classes * num_boxes, generator=generator).float()
    return ((ranks + 1) / (num_classes * num_boxes + 1)).view(num_classes, num_boxes)


def python_iou(box_a, box_b) -> float:
    inter_w = max(0.0, min(box_a[2], box_b[2]) - max(box_a[0], box_b[0]))
    inter_h = max(0.0, min(box_a[3], box_b[3]) - max(box_a[1], box_b[1]))
    inter = inter_w * inter_h
    area = lambda box: (box[2] - box[0]) * (box[3] - box[1])  # noqa: E731
    return inter / (area(box_a) + area(box_b) - inter)


def naive_fast_nms(boxes, scores, iou_threshold, top_k, max_detections):
    """Per class: rank, keep the top_k, drop a box overlapping any higher-ranked one (suppressed
    or not) by more than the threshold; then rank everything and cap. -> [(score, class, index)]."""
    box_list, found = boxes.tolist(), []
    for label, class_scores in enumerate(scores.tolist()):
        ranked = sorted(range(len(class_scores)), key=lambda a: -class_scores[a])[:top_k]
        for rank, index in enumerate(ranked):
            if all(python_iou(box_list[above], box_list[index]) <= iou_threshold for above in ranked[:rank]):
                found.append((class_scores[index], label, index))
    found.sort(key=lambda item: -item[0])
    return found if max_detections is None else found[:max_detections]


def as_tuples(result):
    return list(zip(result["scores"].tolist(), result["labels"].tolist(), result["indices"].tolist()))


def test_matches_the_reference_fast_nms(fastnms_fixture):
    candidates = fastnms_fixture["candidates"]
    for cap, expected in [(100, fastnms_fixture["fast_nms"]), (None, fastnms_fixture["fast_nms_uncapped"])]:
        found = fast_nms(candidates["boxes"], candidates["scores"], candidates["masks"], iou_threshold=0.5,
                         top_k=200, max_detections=cap)
        assert torch.equal(found["labels"], expected["class"])
        assert torch.allclose(found["scores"], expected["score"], rtol=0, atol=1e-6)
        assert torch.allclose(found["boxes"], expected["box"], rtol=0, atol=1e-5)
        assert torch.equal(found["boxes"], candidates["boxes"][found["indices"]])
        if "mask" in expected:
            assert torch.allclose(found["mask_coeffs"], expected["mask"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("iou_threshold", [0.25, 0.5, 0.75])  # exact in float32 and float64
def test_matches_a_slow_per_class_loop(seed, iou_threshold):
    generator = torch.Generator().manual_seed(seed)
    boxes, scores = grid_boxes(40, generator), distinct_scores(3, 40, generator)
    coeffs = torch.randn(40, 4, generator=generator)
    for top_k, cap in [(200, 100), (15, 20), (40, None)]:
        found = fast_nms(boxes, scores, coeffs, iou_threshold=iou_threshold, top_k=top_k, max_detections=cap)
        expected = naive_fast_nms(boxes, scores, iou_threshold, top_k, cap)
        assert as_tuples(found) == expected
        if cap is None and iou_threshold <= 0.5:
            assert len(expected) < 3 * 40  # the case really suppresses
        assert torch.equal(found["mask_coeffs"], coeffs[found["indices"]])


def test_suppressed_boxes_still_suppress():
    # b overlaps a (IoU 0.6) and c overlaps b (IoU 0.6), a and c barely: standard NMS keeps a
    # and c, Fast NMS keeps only a, since c is compared with the suppressed b too.
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.25, 0.0, 1.25, 1.0], [0.5, 0.0, 1.5, 1.0]])
    scores = torch.tensor([[0.9, 0.8, 0.7]])
    found = fast_nms(boxes, scores, torch.zeros(3, 2), iou_threshold=0.5)
    assert found["indices"].tolist() == [0]


def test_no_second_score_threshold():
    """Low-scoring candidates of a class survive (reference quirk, SPEC §7 step 6)."""
    boxes = torch.tensor([[0.0, 0.0, 0.1, 0.1], [0.5, 0.5, 0.6, 0.6]])
    scores = torch.tensor([[0.9, 0.001], [0.002, 0.003]])
    found = fast_nms(boxes, scores, torch.zeros(2, 1))
    assert as_tuples(found) == [(pytest.approx(0.9), 0, 0), (pytest.approx(0.003), 1, 1),
                                (pytest.approx(0.002), 1, 0), (pytest.approx(0.001), 0, 1)]


def test_max_iou_equals_torchvision_triu():
    generator = torch.Generator().manual_seed(3)
    boxes = torch.rand(5, 37, 4, generator=generator)
    boxes = torch.cat([boxes[..., :2], boxes[..., :2] + boxes[..., 2:]], dim=-1)
    expected = torch.stack([box_iou(per_class, per_class).triu(diagonal=1).amax(dim=0)
                            for per_class in boxes])
    assert torch.allclose(max_iou_with_higher_scored(boxes), expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("seed", [0, 1])
def test_cross_class_matches_a_slow_loop(seed):
    generator = torch.Generator().manual_seed(seed)
    boxes, scores = grid_boxes(50, generator), distinct_scores(4, 50, generator)
    found = cross_class_fast_nms(boxes, scores, torch.zeros(50, 3), iou_threshold=0.5, top_k=30)
    best_scores, best_labels = scores.max(dim=0)
    ranked = sorted(range(50), key=lambda a: -best_scores[a].item())[:30]
    box_list = boxes.tolist()
    expected = [(best_scores[index].item(), best_labels[index].item(), index)
                for rank, index in enumerate(ranked)
                if all(python_iou(box_list[above], box_list[index]) <= 0.5 for above in ranked[:rank])]
    assert as_tuples(found) == expected


def test_cross_class_has_no_cap():
    """Like the reference's cc_fast_nms: up to top_k detections, no max_detections."""
    boxes = torch.tensor([[i / 300, 0.0, (i + 0.5) / 300, 0.1] for i in range(250)])
    scores = torch.linspace(0.9, 0.1, 250)[None]
    assert cross_class_fast_nms(boxes, scores, torch.zeros(250, 1), top_k=200)["scores"].numel() == 200


@pytest.mark.parametrize("nms", [fast_nms, cross_class_fast_nms])
def test_empty_input(nms):
    found = nms(torch.zeros(0, 4), torch.zeros(80, 0), torch.zeros(0, 32))
    assert found["boxes"].shape == (0, 4) and found["mask_coeffs"].shape == (0, 32)
    assert found["labels"].dtype == torch.int64 and found["labels"].shape == (0,)
    assert found["scores"].shape == (0,) and found["indices"].shape == (0,)


def test_single_candidate_survives():
    found = fast_nms(torch.tensor([[0.1, 0.1, 0.4, 0.4]]), torch.tensor([[0.2], [0.6]]), torch.ones(1, 2))
    assert as_tuples(found) == [(pytest.approx(0.6), 1, 0), (pytest.approx(0.2), 0, 0)]
