"""The criterion's forward + backward forces at most 5 host-device syncs (issue 13), counted on
the CPU with the operations that sync on CUDA (tests/sync_counter.py), and batching changes
nothing: matching per batch equals matching per image, the subset draw follows the image order."""
import pytest
import torch

from tests.loss.criterion_batch import criterion_batch
from tests.sync_counter import SyncCounter
from yolact.loss import YolactCriterion, match_anchors, match_batch
from yolact.loss.mask_loss import kept_positives
from yolact.modeling.maskiou_head import MaskIoUHead

MAX_SYNCS = 5


def _count_syncs(criterion, outputs, targets, **heads):
    with SyncCounter() as counter:
        losses = criterion(outputs, targets, generator=torch.Generator().manual_seed(0), **heads)
        sum(losses.values()).backward()
    return counter


@pytest.mark.parametrize("objects_per_image", [5, 20])
def test_forward_and_backward_read_the_device_once(objects_per_image):
    # 4 images: one with a crowd box, one without objects; none has more than 100 positives.
    outputs, targets = criterion_batch(4, objects_per_image)
    counter = _count_syncs(YolactCriterion(num_classes=80), outputs, targets)
    # (The code before issue 13: 94 at 5 objects per image, 319 at 20.)
    assert counter.summary() == {"Tensor.tolist": 1}  # the positives per image, for the subset
    assert counter.count <= MAX_SYNCS


def test_subsampled_images_add_one_draw_each():
    outputs, targets = criterion_batch(4, 20)
    criterion = YolactCriterion(num_classes=80, masks_to_train=50)
    assert ((criterion.match(targets, outputs["anchors"])[0] > 0).sum(dim=1) > 50).sum().item() == 3
    counter = _count_syncs(criterion, outputs, targets)
    # Three CPU permutations, counted one by one here (a CUDA loss copies them together,
    # asynchronously from pinned memory).
    assert counter.summary() == {"Tensor.tolist": 1, "aten.randperm.generator": 3}
    assert counter.count <= MAX_SYNCS


def _small_maskiou_head():
    torch.manual_seed(0)
    return MaskIoUHead(num_classes=80, channels=(4, 4, 4, 4, 4))  # 138 -> 1, as yolact_plus's head


@pytest.mark.parametrize("masks_to_train,draws", [(100, 0), (50, 3)])
def test_yolact_plus_criterion_reads_the_device_once_too(masks_to_train, draws):
    # YOLACT++'s mask-IoU term works on the mask loss's samples: no further draw, read or selection.
    outputs, targets = criterion_batch(4, 20)
    criterion = YolactCriterion(num_classes=80, use_maskiou=True, masks_to_train=masks_to_train)
    counter = _count_syncs(criterion, outputs, targets, maskiou_head=_small_maskiou_head())
    expected = {"Tensor.tolist": 1, **({"aten.randperm.generator": draws} if draws else {})}
    # (The code before: 8 and 14, a second read of the positives and a second draw of each subset,
    # a host-built tensor and five boolean selections.)
    assert counter.summary() == expected
    assert counter.count <= MAX_SYNCS


def test_batched_matching_equals_matching_each_image():
    outputs, targets = criterion_batch(4, 20, seed=1)
    anchors = outputs["anchors"]
    conf_t, idx_t, loc_t = match_batch(targets, anchors)
    for image, target in enumerate(targets):
        expected = match_anchors(target["boxes"], target["labels"], target["crowd_boxes"], anchors)
        assert torch.equal(conf_t[image], expected[0])
        assert torch.equal(idx_t[image], expected[1])
        assert torch.equal(loc_t[image], expected[2])
    assert (conf_t[0] == -1).any() and (conf_t[3] == 0).all()  # neutrals; the empty image


def test_subset_draws_follow_the_image_order_and_keep_the_drawn_order():
    positives = torch.zeros((3, 12), dtype=torch.bool)
    positives[0, [1, 3, 4, 8, 11]] = True  # 5 > 2: subsampled
    positives[1, [0, 5, 6]] = True  # 3 > 2: subsampled
    positives[2, [7]] = True  # 1: kept
    image_index, anchor_index, kept_counts, ratios = kept_positives(
        positives, 2, torch.Generator().manual_seed(3), torch.float64)
    generator = torch.Generator().manual_seed(3)
    first, second = torch.randperm(5, generator=generator)[:2], torch.randperm(3, generator=generator)[:2]
    expected_anchors = torch.tensor([1, 3, 4, 8, 11])[first].tolist() + torch.tensor([0, 5, 6])[second].tolist() + [7]
    assert anchor_index.tolist() == expected_anchors
    assert image_index.tolist() == [0, 0, 1, 1, 2]
    assert kept_counts == [2, 2, 1]
    assert ratios.tolist() == [2.5, 1.5, 1.0]
