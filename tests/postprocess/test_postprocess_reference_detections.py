"""The post-processor against the reference's detections on yolact_tiny ("eval_sharp")."""
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from tests.reference_fixture.cases import unpack_masks
from yolact.postprocess import YolactPostProcessor


@pytest.fixture(scope="module")
def sharp(reference):
    return reference.dump["eval_sharp"]


@pytest.fixture(scope="module")
def raw_outputs(reference, sharp):
    """The model's outputs as the post-processor takes them; log(p) are logits whose softmax is p."""
    raw = sharp["raw"]
    return {"cls_logits": raw["conf"].log(), "box_deltas": raw["loc"], "mask_coeffs": raw["mask"],
            "prototypes": raw["proto"], "anchors": reference.dump["train"]["preds"]["priors"]}


def assert_detections_equal(found, expected_per_image, score_atol=1e-6):
    """Same classes, scores within ``score_atol``, boxes within 1 pixel, masks within 0.5%."""
    for ours, expected in zip(found, expected_per_image):
        assert torch.equal(ours["labels"], expected["classes"])
        assert torch.allclose(ours["scores"], expected["scores"], rtol=0, atol=score_atol)
        assert ours["boxes"].dtype == torch.float32 and ours["scores"].dtype == torch.float32
        assert (ours["boxes"] - expected["boxes"]).abs().max() <= 1
        reference_masks = unpack_masks(expected["masks"])
        assert ours["masks"].shape == reference_masks.shape and ours["masks"].dtype == torch.bool
        differing = (ours["masks"].numpy() != reference_masks).reshape(len(reference_masks), -1).mean(axis=1)
        assert differing.max() <= 0.005


def test_detect_equals_the_reference_fast_nms(reference, sharp):
    raw = sharp["raw"]
    anchors = reference.dump["train"]["preds"]["priors"]
    found = YolactPostProcessor().detect(raw["conf"], raw["loc"], raw["mask"], anchors)
    for ours, expected in zip(found, sharp["detect"]):
        assert torch.equal(ours["labels"], expected["class"])
        assert torch.allclose(ours["scores"], expected["score"], rtol=0, atol=1e-6)
        assert torch.allclose(ours["boxes"], expected["box"], rtol=0, atol=1e-5)
        assert torch.allclose(ours["mask_coeffs"], expected["mask"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("which", ["input size", "original size"])
def test_final_detections_equal_the_reference(raw_outputs, sharp, reference, which):
    """At the input size (``post``) and pasted onto a larger original (``post_640x480`` at 550,
    ``post_240x180`` at 192)."""
    key = [key for key in reference.post_sizes if (key == "post") == (which == "input size")][0]
    image_size = reference.post_sizes[key]
    found = YolactPostProcessor()(raw_outputs, [image_size, image_size])
    assert_detections_equal(found, sharp[key])


def test_rle_and_no_mask_formats(raw_outputs):
    postprocessor = YolactPostProcessor(mask_chunk_size=16)
    as_bool = postprocessor(raw_outputs, [(480, 640), (550, 550)])
    as_rle = postprocessor(raw_outputs, [(480, 640), (550, 550)], mask_format="rle")
    as_none = postprocessor(raw_outputs, [(480, 640), (550, 550)], mask_format="none")
    for with_bool, with_rle, without in zip(as_bool, as_rle, as_none):
        assert all(isinstance(rle["counts"], str) for rle in with_rle["masks"])
        decoded = mask_utils.decode([dict(rle, counts=rle["counts"].encode()) for rle in with_rle["masks"]])
        assert np.array_equal(decoded.transpose(2, 0, 1).astype(bool), with_bool["masks"].numpy())
        assert "masks" not in without
        for key in ("boxes", "labels", "scores"):
            assert torch.equal(with_rle[key], with_bool[key]) and torch.equal(without[key], with_bool[key])
