"""The criterion against the reference's own loss terms and matching (tests/reference_fixture)."""
import pytest
import torch

from yolact.loss import YolactCriterion, match_anchors

REFERENCE_TERMS = {"loss_cls": "C", "loss_box": "B", "loss_mask": "M", "loss_semseg": "S"}


def _targets_from_reference(reference_input):
    """The reference's packed targets (crowd rows last, label -1) -> our per-image dicts."""
    targets = []
    for packed, masks, num_crowds in zip(reference_input["targets"], reference_input["masks"],
                                         reference_input["num_crowds"].tolist()):
        num_objects = packed.shape[0] - num_crowds
        targets.append({
            "boxes": packed[:num_objects, :4],
            "labels": packed[:num_objects, 4].long(),
            "masks": masks[:num_objects],  # crowd masks are not used by the loss
            "crowd_boxes": packed[num_objects:, :4],
        })
    return targets


def _outputs_from_reference(preds):
    return {
        "cls_logits": preds["conf"], "box_deltas": preds["loc"], "mask_coeffs": preds["mask"],
        "anchors": preds["priors"], "prototypes": preds["proto"], "semseg_logits": preds["segm"],
    }


@pytest.fixture(scope="module")
def reference_case(reference):
    return _targets_from_reference(reference.dump["input"]), reference.dump["train"]


def test_fixture_has_crowds_and_positives(reference_case, reference):
    targets, train = reference_case
    assert [t["crowd_boxes"].shape[0] for t in targets] == [1, 0]
    # both under masks_to_train; the crowd region makes anchors of image 0 neutral (-1)
    assert (train["match"]["conf_t"] > 0).sum(dim=1).tolist() == reference.num_positives
    assert (train["match"]["conf_t"][0] == -1).any()


def test_matching_equals_reference(reference_case):
    targets, train = reference_case
    anchors = train["preds"]["priors"]
    for image, target in enumerate(targets):
        conf_t, idx_t, loc_t = match_anchors(
            target["boxes"], target["labels"], target["crowd_boxes"], anchors
        )
        assert torch.equal(conf_t, train["match"]["conf_t"][image])
        assert torch.equal(idx_t, train["match"]["idx_t"][image])
        torch.testing.assert_close(loc_t, train["match"]["loc_t"][image], rtol=1e-5, atol=1e-6)


def test_criterion_match_stacks_the_images(reference_case, reference):
    targets, train = reference_case
    conf_t, idx_t, loc_t = YolactCriterion(num_classes=80).match(targets, train["preds"]["priors"])
    assert torch.equal(conf_t, train["match"]["conf_t"])
    assert torch.equal(idx_t, train["match"]["idx_t"])
    assert loc_t.shape == (2, reference.num_anchors, 4)


def test_loss_terms_equal_reference(reference_case):
    targets, train = reference_case
    criterion = YolactCriterion(num_classes=80)
    losses = criterion(_outputs_from_reference(train["preds"]), targets)
    assert set(losses) == set(REFERENCE_TERMS)
    for name, reference_name in REFERENCE_TERMS.items():
        expected = train["losses"][reference_name]
        assert losses[name].shape == ()
        torch.testing.assert_close(losses[name], expected, rtol=1e-4, atol=0.0, msg=name)
    total = sum(losses.values())
    torch.testing.assert_close(total, train["loss_total"], rtol=1e-4, atol=0.0)


def test_loss_weights_give_the_unweighted_terms(reference_case):
    targets, train = reference_case
    criterion = YolactCriterion(num_classes=80, box_weight=3.0, mask_weight=1.0)
    assert criterion.loss_weights == {"loss_cls": 1.0, "loss_box": 3.0, "loss_mask": 1.0, "loss_semseg": 1.0}
    losses = criterion(_outputs_from_reference(train["preds"]), targets)
    torch.testing.assert_close(losses["loss_box"], train["losses"]["B"] * 2, rtol=1e-4, atol=0.0)
    torch.testing.assert_close(losses["loss_mask"], train["losses"]["M"] / 6.125, rtol=1e-4, atol=0.0)
