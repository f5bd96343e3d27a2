"""The post-processor on CUDA gives the CPU's detections (the sharp reference outputs): the same
classes in the same order, scores to 1e-5, boxes to a pixel, masks with IoU > 0.99."""
import pytest
import torch

from tests.cuda.cuda_support import requires_cuda
from yolact.postprocess import YolactPostProcessor

pytestmark = requires_cuda


@pytest.fixture(scope="module")
def raw_outputs(reference_dump):
    raw = reference_dump["eval_sharp"]["raw"]
    return {"cls_logits": raw["conf"].log(), "box_deltas": raw["loc"], "mask_coeffs": raw["mask"],
            "prototypes": raw["proto"], "anchors": reference_dump["train"]["preds"]["priors"]}


def _mask_iou(ours: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """(n, H, W) bool twice -> (n,) IoU, 1 where both masks are empty."""
    intersection = (ours & expected).flatten(1).sum(dim=1)
    union = (ours | expected).flatten(1).sum(dim=1)
    return torch.where(union > 0, intersection / union.clamp(min=1), 1.0)


@pytest.mark.parametrize("nms_method", ["fast", "cross_class", "standard"])
def test_detections_equal_the_cpu(raw_outputs, nms_method):
    postprocessor = YolactPostProcessor(nms_method=nms_method)
    image_sizes = [(480, 640), (550, 550)]
    expected = postprocessor(raw_outputs, image_sizes)
    found = postprocessor({name: value.cuda() for name, value in raw_outputs.items()}, image_sizes)
    assert sum(len(detections["labels"]) for detections in expected) > 0
    for ours, reference in zip(found, expected):
        ours = {key: value.cpu() for key, value in ours.items()}
        assert torch.equal(ours["labels"], reference["labels"])
        torch.testing.assert_close(ours["scores"], reference["scores"], rtol=0.0, atol=1e-5)
        assert (ours["boxes"] - reference["boxes"]).abs().max() <= 1
        assert ours["masks"].shape == reference["masks"].shape
        assert (_mask_iou(ours["masks"], reference["masks"]) > 0.99).all()
