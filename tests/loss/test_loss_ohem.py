"""OHEM classification: which negatives are mined and the summed cross-entropy (SPEC §6.2)."""
import math

import torch

from yolact.loss import background_loss, ohem_classification_loss, select_hard_negatives


def _logits_with_background_losses(bg_losses, num_classes=3):
    """(1, A, C+1) logits whose background loss -log softmax[0] is bg_losses (bg logit 0, others equal)."""
    bg_losses = torch.tensor(bg_losses, dtype=torch.float64)
    # -log(1 / (1 + C e^x)) = b  <=>  x = log((e^b - 1) / C)
    other = torch.log(torch.expm1(bg_losses) / num_classes)
    logits = torch.cat((torch.zeros_like(bg_losses)[:, None], other[:, None].expand(-1, num_classes)), dim=1)
    return logits[None]


def test_background_loss_is_minus_log_softmax_of_background():
    logits = torch.tensor([[[2.0, 0.5, -1.0], [1000.0, 0.0, 0.0], [-1000.0, 0.0, 0.0]]])
    expected = -torch.log_softmax(logits.double(), dim=-1)[..., 0]
    torch.testing.assert_close(background_loss(logits).double(), expected)
    # A per-row max keeps both extreme rows finite (a single global max would not).
    assert torch.isfinite(background_loss(logits)).all()


def test_hardest_negatives_three_per_positive_skipping_positive_and_neutral():
    bg = torch.tensor([[9.0, 8.0, 1.0, 2.0, 3.0, 4.0, 0.5, 7.0, 0.25, 6.0]])
    conf_t = torch.tensor([[1, -1, 0, 0, 0, 0, 0, 0, 0, 0]])  # anchor 0 positive, 1 neutral
    negatives = select_hard_negatives(bg, conf_t, negpos_ratio=3, negatives_per_empty_image=5,
                                      is_empty_image=torch.tensor([False]))
    assert negatives.nonzero()[:, 1].tolist() == [5, 7, 9]  # losses 4, 7, 6


def test_negatives_capped_at_anchors_minus_one():
    bg = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    conf_t = torch.tensor([[1, 2, 0, 0]])  # 2 positives -> 6 wanted, at most A - 1 = 3 ranked
    negatives = select_hard_negatives(bg, conf_t, negpos_ratio=3, negatives_per_empty_image=0,
                                      is_empty_image=torch.tensor([False]))
    assert negatives.tolist() == [[False, False, True, True]]


def test_cleared_anchors_tie_with_zero_loss_negatives_and_take_quota():
    # Reference quirk: positives/neutrals are ranked at loss 0 with the real negatives, then dropped.
    bg = torch.tensor([[5.0, 3.0, 0.0, 0.0, 0.0, 0.0]])
    conf_t = torch.tensor([[1, 0, 0, 0, -1, 0]])  # num_neg = 3: ranks 0..2 = anchors 1, 0 (cleared), 2
    negatives = select_hard_negatives(bg, conf_t, negpos_ratio=3, negatives_per_empty_image=0,
                                      is_empty_image=torch.tensor([False]))
    assert negatives.nonzero()[:, 1].tolist() == [1, 2]  # the stable order puts index 0 first among ties


def test_image_without_positives_gets_no_negatives_unless_flagged_empty():
    bg = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]] * 2)
    conf_t = torch.zeros((2, 5), dtype=torch.int64)
    negatives = select_hard_negatives(bg, conf_t, negpos_ratio=3, negatives_per_empty_image=2,
                                      is_empty_image=torch.tensor([False, True]))
    assert negatives.tolist() == [[False] * 5, [False, True, False, True, False]]


def test_ohem_loss_is_the_cross_entropy_sum_of_positives_and_mined_negatives():
    bg_losses = [0.5, 0.1, 2.0, 0.3, 1.5, 0.2, 0.7, 3.0, 0.05, 0.4]
    logits = _logits_with_background_losses(bg_losses)
    conf_t = torch.tensor([[0, 0, 2, 0, 0, 0, 0, -1, 0, 0]])  # one positive (class 1), one neutral
    loss = ohem_classification_loss(logits, conf_t, negpos_ratio=3, is_empty_image=torch.tensor([False]))
    # Negatives: the 3 largest background losses among real negatives: 1.5, 0.7, 0.5.
    # Positive: target class 2 among 3 equal foreground logits x = log((e^2 - 1) / 3):
    # -log(e^x / (1 + 3 e^x)) = log(1 + 3 e^x) - x = 2 - log((e^2 - 1) / 3).
    positive = 2.0 - math.log(math.expm1(2.0) / 3)
    torch.testing.assert_close(loss, torch.tensor(1.5 + 0.7 + 0.5 + positive, dtype=torch.float64))


def test_ohem_gradient_only_at_selected_anchors():
    logits = _logits_with_background_losses([0.5, 0.1, 2.0, 0.3, 1.5]).requires_grad_()
    conf_t = torch.tensor([[0, 0, 1, 0, 0]])  # positive at 2; negatives: 1.5, 0.5, 0.3 (not 0.1)
    ohem_classification_loss(logits, conf_t, is_empty_image=torch.tensor([False])).backward()
    touched = logits.grad.abs().sum(dim=-1)[0] > 0
    assert touched.tolist() == [True, False, True, True, True]
