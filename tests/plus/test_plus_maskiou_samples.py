"""YOLACT++'s mask-IoU term shares the mask loss's samples: one subset draw, one mask assembly;
left-out samples weigh zero (the same sums and gradients as selecting the others); the head is an
argument of the criterion and the post-processor, never an output of the model."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from yolact.loss import YolactCriterion
from yolact.loss.batch_targets import concatenate_targets
from yolact.loss.mask_loss import downsample_binary_masks, positive_mask_loss, positive_masks
from yolact.loss.maskiou_loss import maskiou_loss, maskiou_samples
from yolact.modeling.maskiou_head import MaskIoUHead, post_forward_heads
from yolact.modeling.yolact import make_yolact
from yolact.postprocess import YolactPostProcessor

NUM_CLASSES, INPUT_SIZE, PROTO_SIZE, NUM_PROTOS = 3, 32, 16, 4
BOX_A = (0.2, 0.2, 0.6, 0.6)  # ~41 px at 16x16: trained
BOX_B = (0.7, 0.7, 0.8, 0.8)  # ~4 px: left out of the mask-IoU term (<= 25 px)
BOX_C = (0.1, 0.5, 0.5, 0.9)  # trained


def _cxcywh(box):
    return [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]]


def _target(boxes, labels):
    masks = torch.zeros((len(boxes), INPUT_SIZE, INPUT_SIZE), dtype=torch.uint8)
    for mask, box in zip(masks, boxes):
        x1, y1, x2, y2 = (round(v * INPUT_SIZE) for v in box)
        mask[y1:y2, x1:x2] = 1
    return {"boxes": torch.tensor(boxes), "labels": torch.tensor(labels), "masks": masks,
            "crowd_boxes": torch.zeros((0, 4))}


def _batch(seed=0):
    """Image 0: 8 anchors on its one object (more than masks_to_train = 3); image 1: 2 anchors on
    a small object and 1 on a large one. Anchors are exact copies of the boxes: IoU 1."""
    anchors = torch.tensor([_cxcywh(BOX_A)] * 8 + [_cxcywh(BOX_B)] * 2 + [_cxcywh(BOX_C)]
                           + [[0.9, 0.1, 0.1, 0.1], [0.1, 0.1, 0.05, 0.05]])
    generator = torch.Generator().manual_seed(seed)

    def leaf(*shape, activation=None):
        values = torch.randn(*shape, generator=generator)
        return (values if activation is None else activation(values)).requires_grad_()

    num_anchors = anchors.shape[0]
    outputs = {"cls_logits": leaf(2, num_anchors, NUM_CLASSES + 1), "box_deltas": leaf(2, num_anchors, 4),
               "mask_coeffs": leaf(2, num_anchors, NUM_PROTOS, activation=torch.tanh),
               "prototypes": leaf(2, PROTO_SIZE, PROTO_SIZE, NUM_PROTOS, activation=torch.relu),
               "anchors": anchors, "semseg_logits": leaf(2, NUM_CLASSES, 8, 8)}
    targets = [_target([BOX_A], [2]), _target([BOX_B, BOX_C], [0, 1])]
    return outputs, targets


def _recording_head():
    torch.manual_seed(0)
    head = MaskIoUHead(num_classes=NUM_CLASSES, channels=(4, 4))
    inputs = []
    head.register_forward_hook(lambda module, args, output: inputs.append(args[0]))
    return head, inputs


def _shared_samples(criterion, outputs, targets, generator):
    """What the criterion should draw and assemble once: (positive masks, mask-IoU samples, positives)."""
    conf_t, idx_t, _ = criterion.match(targets, outputs["anchors"])
    prototypes = outputs["prototypes"]
    gt = concatenate_targets(targets, device=prototypes.device, dtype=prototypes.dtype)
    positive = positive_masks(prototypes, outputs["mask_coeffs"], conf_t, idx_t, gt.boxes,
                              downsample_binary_masks(gt.masks, (PROTO_SIZE, PROTO_SIZE), prototypes.dtype),
                              gt.offsets, masks_to_train=criterion.masks_to_train, generator=generator)
    samples = maskiou_samples(positive, gt.labels, min_gt_area=criterion.maskiou_min_gt_area)
    return positive, samples, int((conf_t > 0).sum())


def test_maskiou_term_uses_the_mask_loss_subset_and_draws_once():
    outputs, targets = _batch()
    criterion = YolactCriterion(num_classes=NUM_CLASSES, use_maskiou=True, masks_to_train=3)
    head, head_inputs = _recording_head()
    generator = torch.Generator().manual_seed(5)
    losses = criterion(outputs, targets, generator=generator, maskiou_head=head)

    replay = torch.Generator().manual_seed(5)
    positive, samples, num_pos = _shared_samples(criterion, outputs, targets, replay)
    assert num_pos == 11 and positive.kept.counts == [3, 3]  # image 0: 3 of its 8 positives
    assert torch.equal(positive.kept.ratios, torch.tensor([8 / 3, 1.0]))
    # one draw for the whole criterion: the mask loss's (the mask-IoU term does not draw again)
    assert torch.equal(generator.get_state(), replay.get_state())
    assert len(head_inputs) == 1 and torch.equal(head_inputs[0], positive.pred_masks.detach()[:, None])
    torch.testing.assert_close(losses["loss_mask"], positive_mask_loss(positive) * 6.125 / num_pos,
                               rtol=0, atol=0)
    assert samples.trained.tolist() == [True, True, True, False, False, True]  # B's GT is 4 px
    with torch.no_grad():
        expected = maskiou_loss(head, samples) * 25.0 / num_pos
    torch.testing.assert_close(losses["loss_maskiou"], expected, rtol=0, atol=0)


def test_zero_weighted_samples_give_the_sums_and_gradients_of_selected_ones():
    outputs, targets = _batch(seed=1)
    criterion = YolactCriterion(num_classes=NUM_CLASSES, use_maskiou=True, masks_to_train=3)
    head, _ = _recording_head()
    _, samples, _ = _shared_samples(criterion, outputs, targets, torch.Generator().manual_seed(2))
    parameters = [outputs["prototypes"], outputs["mask_coeffs"], *head.parameters()]

    zero_weighted = maskiou_loss(head, samples)
    grads_zero_weighted = torch.autograd.grad(zero_weighted, parameters, retain_graph=True)
    keep = samples.trained
    predicted = head(samples.masks[keep]).gather(1, samples.labels[keep, None])[:, 0]
    selected = F.smooth_l1_loss(predicted, samples.target_ious[keep], reduction="sum", beta=1.0)
    grads_selected = torch.autograd.grad(selected, parameters)

    assert 0 < int(keep.sum()) < keep.numel()
    torch.testing.assert_close(zero_weighted, selected, rtol=1e-6, atol=0)
    for ours, expected in zip(grads_zero_weighted, grads_selected):
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-7)


def test_left_out_samples_with_an_empty_mask_keep_the_gradient_finite():
    outputs, targets = _batch()
    targets[1]["masks"][0] = 0  # B's GT mask empty: its IoU is 0/0 when its predicted mask is too
    criterion = YolactCriterion(num_classes=NUM_CLASSES, use_maskiou=True)
    head, _ = _recording_head()
    with torch.no_grad():
        outputs["prototypes"][1] = -1.0  # image 1's masks: sigmoid(<= 0) <= 0.5, empty when binarised
        outputs["prototypes"].relu_()
    losses = criterion(outputs, targets, maskiou_head=head)
    losses["loss_maskiou"].backward()
    assert torch.isfinite(losses["loss_maskiou"])
    assert all(torch.isfinite(param.grad).all() for param in head.parameters())
    assert torch.isfinite(outputs["mask_coeffs"].grad).all()


def test_the_head_is_an_argument_not_an_output():
    torch.manual_seed(0)
    model = make_yolact(num_classes=NUM_CLASSES, block="basic", layers=(1, 1, 1, 1), fpn_channels=8,
                        proto_channels=8, head_channels=8, num_prototypes=4, use_maskiou=True,
                        maskiou_channels=(4, 4, 4))
    outputs = model.eval()(torch.randn(1, 3, 64, 64))
    assert all(torch.is_tensor(value) for value in outputs.values())
    assert post_forward_heads(model) == {"maskiou_head": model.maskiou_head}
    assert post_forward_heads(nn.DataParallel(model)) == {"maskiou_head": model.maskiou_head}  # unwrapped
    model.maskiou_head = None
    assert post_forward_heads(model) == {}
    with pytest.raises(ValueError, match="maskiou_head"):
        YolactPostProcessor(rescore_mask=True)(outputs, [(64, 64)])
    plus_outputs, targets = _batch()
    with pytest.raises(ValueError, match="maskiou_head"):
        YolactCriterion(num_classes=NUM_CLASSES, use_maskiou=True)(plus_outputs, targets)
