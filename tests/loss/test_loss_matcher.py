"""Exact matching cases: thresholds, forced matches, crowds, empty images (SPEC §6.1)."""
import torch

from yolact.loss import intersection_over_area, match_anchors, match_batch
from yolact.box_ops import encode_boxes


def _anchors_from_xyxy(boxes):
    """xyxy -> cxcywh, exact for the dyadic boxes used here."""
    boxes = torch.tensor(boxes, dtype=torch.float32)
    return torch.cat(((boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]), dim=1)


NO_CROWDS = torch.zeros((0, 4))


def test_thresholds_positive_neutral_background():
    gt_boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    # Anchors nested in the GT: IoU = 2 * height, all exact in float32.
    anchors = _anchors_from_xyxy([
        [0.0, 0.0, 0.5, 0.5],      # IoU 1: the forced match
        [0.0, 0.0, 0.5, 0.375],    # 0.75 -> positive
        [0.0, 0.0, 0.5, 0.25],     # 0.5 exactly -> positive (>= 0.5)
        [0.0, 0.0, 0.5, 0.234375],  # 0.46875 -> neutral
        [0.0, 0.0, 0.5, 0.21875],  # 0.4375 -> neutral
        [0.0, 0.0, 0.5, 0.1875],   # 0.375 -> background
        [0.75, 0.75, 1.0, 1.0],    # 0 -> background
    ])
    conf_t, idx_t, loc_t = match_anchors(gt_boxes, torch.tensor([6]), NO_CROWDS, anchors)
    assert conf_t.tolist() == [7, 7, 7, -1, -1, 0, 0]
    assert conf_t.dtype == torch.int64 and idx_t.dtype == torch.int64
    assert idx_t.tolist() == [0] * 7
    assert torch.equal(loc_t[0], torch.zeros(4))
    torch.testing.assert_close(loc_t, encode_boxes(gt_boxes.expand(7, 4), anchors))


def test_custom_thresholds():
    gt_boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    anchors = _anchors_from_xyxy([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.375], [0.0, 0.0, 0.5, 0.25]])
    conf_t, _, _ = match_anchors(gt_boxes, torch.tensor([0]), NO_CROWDS, anchors,
                                 pos_iou_threshold=0.8, neg_iou_threshold=0.6)
    assert conf_t.tolist() == [1, -1, 0]


def test_forced_matching_two_gts_want_the_same_anchor():
    gt_boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.25]])
    anchors = _anchors_from_xyxy([
        [0.0, 0.0, 0.5, 0.5],      # IoU 1 with GT0, 0.5 with GT1: the best anchor of both
        [0.0, 0.0, 0.125, 0.125],  # IoU 0.0625 with GT0, 0.125 with GT1: GT1's second best
        [0.75, 0.75, 1.0, 1.0],    # nothing
    ])
    conf_t, idx_t, _ = match_anchors(gt_boxes, torch.tensor([2, 4]), NO_CROWDS, anchors)
    # GT0 (larger best overlap) takes anchor 0; GT1 is forced onto anchor 1 despite IoU 0.125.
    # (SSD matching, "the later GT wins", would give anchor 0 to GT1 and leave anchor 1 background.)
    assert conf_t.tolist() == [3, 5, 0]
    assert idx_t.tolist() == [0, 1, 0]


def test_forced_matching_is_greedy_by_best_overlap_not_by_gt_order():
    # GT0's only good anchor is anchor 0 (IoU 0.5); GT1 matches anchor 0 perfectly: GT1 is served first.
    gt_boxes = torch.tensor([[0.0, 0.0, 0.5, 0.25], [0.0, 0.0, 0.5, 0.5]])
    anchors = _anchors_from_xyxy([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.125, 0.125]])
    conf_t, idx_t, _ = match_anchors(gt_boxes, torch.tensor([0, 1]), NO_CROWDS, anchors)
    assert idx_t.tolist() == [1, 0]
    assert conf_t.tolist() == [2, 1]


def test_intersection_over_area_is_relative_to_the_first_box():
    boxes = torch.tensor([[0.5, 0.5, 0.75, 0.75], [0.25, 0.5, 0.75, 0.75], [0.0, 0.0, 0.25, 0.25]])
    regions = torch.tensor([[0.5, 0.5, 1.0, 1.0]])
    assert intersection_over_area(boxes, regions).flatten().tolist() == [1.0, 0.5, 0.0]


def test_crowd_neutralises_only_non_positive_anchors_by_intersection_over_anchor():
    gt_boxes = torch.tensor([[0.0, 0.0, 0.25, 0.25]])
    crowd_boxes = torch.tensor([[0.5, 0.5, 1.0, 1.0], [0.0, 0.0, 0.25, 0.25]])
    anchors = _anchors_from_xyxy([
        [0.0, 0.0, 0.25, 0.25],       # the GT itself, also covered by crowd 1: stays positive
        [0.5, 0.5, 0.75, 0.75],       # inside crowd 0 (IoA 1, IoU only 0.25) -> neutral
        [0.4375, 0.5, 0.75, 0.75],    # IoA 0.8 -> neutral
        [0.375, 0.5, 0.75, 0.75],     # IoA 2/3 -> background
        [0.25, 0.5, 0.75, 0.75],      # IoA 0.5 -> background
        [0.0, 0.0, 0.25, 0.21875],    # IoU 0.875 with the GT: positive, under crowd 1: stays
        [0.0, 0.0, 0.25, 0.1171875],  # IoU 0.46875 neutral already; IoA 1: stays neutral
    ])
    conf_t, _, _ = match_anchors(gt_boxes, torch.tensor([0]), crowd_boxes, anchors)
    assert conf_t.tolist() == [1, -1, -1, 0, 0, 1, -1]
    conf_no_crowd, _, _ = match_anchors(gt_boxes, torch.tensor([0]), crowd_boxes, anchors,
                                        crowd_iou_threshold=1.0)
    assert conf_no_crowd.tolist() == [1, 0, 0, 0, 0, 1, -1]


def test_image_without_objects_is_background_or_neutral_under_crowds():
    anchors = _anchors_from_xyxy([[0.5, 0.5, 0.75, 0.75], [0.0, 0.0, 0.25, 0.25]])
    empty_boxes, empty_labels = torch.zeros((0, 4)), torch.zeros((0,), dtype=torch.int64)
    conf_t, idx_t, loc_t = match_anchors(empty_boxes, empty_labels, NO_CROWDS, anchors)
    assert conf_t.tolist() == [0, 0] and idx_t.tolist() == [0, 0]
    assert torch.equal(loc_t, torch.zeros(2, 4))
    conf_t, _, _ = match_anchors(empty_boxes, empty_labels, torch.tensor([[0.5, 0.5, 1.0, 1.0]]), anchors)
    assert conf_t.tolist() == [-1, 0]


def test_match_batch_stacks_per_image_matches_and_crowd_key_is_optional():
    anchors = _anchors_from_xyxy([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    targets = [
        {"boxes": torch.tensor([[0.5, 0.5, 1.0, 1.0]]), "labels": torch.tensor([3])},
        {"boxes": torch.zeros((0, 4)), "labels": torch.zeros((0,), dtype=torch.int64),
         "crowd_boxes": torch.tensor([[0.0, 0.0, 0.5, 0.5]])},
    ]
    conf_t, idx_t, loc_t = match_batch(targets, anchors)
    assert conf_t.tolist() == [[0, 4], [-1, 0]]
    assert idx_t.shape == (2, 2) and loc_t.shape == (2, 2, 4)


def test_small_recipe_matches_positives_from_iou_0_4_and_background_below_0_3():
    """``small.yaml``'s thresholds reach the criterion: the anchors the reference leaves neutral
    (IoU 0.4-0.5) train as positives, and those at 0.3-0.4 are neutral instead of background."""
    from yolact.build import build_criterion
    from yolact.config import load_config

    criterion = build_criterion(load_config("small", ["model.num_classes=6"]))
    gt_boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    anchors = _anchors_from_xyxy([
        [0.0, 0.0, 0.5, 0.5],      # IoU 1: the forced match
        [0.0, 0.0, 0.5, 0.234375],  # 0.46875 -> positive (reference: neutral)
        [0.0, 0.0, 0.5, 0.21875],  # 0.4375 -> positive (reference: neutral)
        [0.0, 0.0, 0.5, 0.1875],   # 0.375 -> neutral (reference: background)
        [0.0, 0.0, 0.5, 0.125],    # 0.25 -> background
    ])
    conf_t, _, _ = match_anchors(gt_boxes, torch.tensor([5]), NO_CROWDS, anchors,
                                 pos_iou_threshold=criterion.pos_iou_threshold,
                                 neg_iou_threshold=criterion.neg_iou_threshold)
    assert conf_t.tolist() == [6, 6, 6, -1, 0]
    reference = match_anchors(gt_boxes, torch.tensor([5]), NO_CROWDS, anchors)[0]
    assert reference.tolist() == [6, -1, -1, 0, 0]
