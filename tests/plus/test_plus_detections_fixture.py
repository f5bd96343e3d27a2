"""Fast NMS and YOLACT++'s mask re-scoring against the reference's detections (eval section)."""
import pytest
import torch

from yolact.postprocess import YolactPostProcessor


@pytest.fixture
def eval_outputs(plus_model, plus_dump):
    plus_model.eval()
    with torch.no_grad():
        return plus_model(plus_dump["input"]["images"])


def test_detect_equals_the_reference(eval_outputs, plus_dump):
    found = YolactPostProcessor().detect(eval_outputs["cls_logits"].softmax(-1), eval_outputs["box_deltas"],
                                         eval_outputs["mask_coeffs"], eval_outputs["anchors"])
    for ours, expected in zip(found, plus_dump["eval"]["detect"]):
        assert torch.equal(ours["labels"], expected["class"])
        torch.testing.assert_close(ours["scores"], expected["score"], rtol=0, atol=1e-5)
        torch.testing.assert_close(ours["boxes"], expected["box"], rtol=0, atol=1e-4)


@pytest.mark.parametrize("key,image_size", [("post", (192, 192)), ("post_160x120", (120, 160))])
def test_rescored_detections_equal_the_reference(plus_model, eval_outputs, plus_dump, plus_loader, key,
                                                 image_size):
    postprocessor = YolactPostProcessor(rescore_mask=True)
    found = postprocessor(eval_outputs, [image_size, image_size], maskiou_head=plus_model.maskiou_head)
    for ours, expected in zip(found, plus_dump["eval"][key]):
        assert torch.equal(ours["labels"], expected["classes"])
        torch.testing.assert_close(ours["scores"], expected["scores"], rtol=0, atol=1e-5)
        torch.testing.assert_close(ours["mask_scores"], expected["mask_scores"], rtol=0, atol=1e-5)
        assert (ours["boxes"] - expected["boxes"]).abs().max() <= 1
        reference_masks = plus_loader.unpack_masks(expected["masks"])
        assert ours["masks"].shape == reference_masks.shape
        differing = (ours["masks"] != reference_masks).flatten(1).float().mean(dim=1)
        assert differing.max() <= 0.005


def test_rescore_gives_the_predicted_iou(plus_model, eval_outputs, plus_dump):
    found = YolactPostProcessor().detect(eval_outputs["cls_logits"].softmax(-1), eval_outputs["box_deltas"],
                                         eval_outputs["mask_coeffs"], eval_outputs["anchors"])
    postprocessor = YolactPostProcessor(rescore_mask=True)
    for image, expected in enumerate(plus_dump["eval"]["post"]):
        rescored = postprocessor.rescore(found[image], eval_outputs["prototypes"][image],
                                         plus_model.maskiou_head)
        torch.testing.assert_close(rescored["maskiou"], expected["maskiou_p"], rtol=0, atol=1e-5)
        assert int((rescored["maskiou"] == 0).sum()) == plus_dump["eval"]["diag"][image]["maskiou_p_zero"]


def test_without_rescore_there_are_no_mask_scores(eval_outputs):
    found = YolactPostProcessor()(eval_outputs, [(64, 64), (64, 64)], mask_format="none")
    assert all("mask_scores" not in detections for detections in found)
