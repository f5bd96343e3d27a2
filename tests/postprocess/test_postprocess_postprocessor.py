"""YolactPostProcessor on small synthetic outputs: shapes, empty images, options, dispatch."""
import pytest
import torch

from yolact.box_ops import decode_boxes
from yolact.postprocess import (YolactPostProcessor, assemble_masks, cross_class_fast_nms, encode_masks_rle,
                                fast_nms, mask_probabilities, pixel_boxes, select_candidates, standard_nms)

NUM_CLASSES, NUM_PROTOS = 3, 4


def synthetic_outputs(num_images: int = 2, seed: int = 0, empty_images=()):
    """Outputs of a fake 4-class model on an 8x8 anchor grid; images in ``empty_images`` have a
    confident background everywhere."""
    generator = torch.Generator().manual_seed(seed)
    side = (torch.arange(8) + 0.5) / 8
    centers = torch.stack(torch.meshgrid(side, side, indexing="ij"), dim=-1).reshape(-1, 2)
    anchors = torch.cat([centers, torch.full((64, 2), 0.25)], dim=1)  # (64, 4) cxcywh
    cls_logits = torch.randn(num_images, 64, NUM_CLASSES + 1, generator=generator) * 2
    for image in empty_images:
        cls_logits[image, :, 0] = 20.0
    return {"cls_logits": cls_logits,
            "box_deltas": torch.randn(num_images, 64, 4, generator=generator) * 0.5,
            "mask_coeffs": torch.tanh(torch.randn(num_images, 64, NUM_PROTOS, generator=generator)),
            "prototypes": torch.relu(torch.randn(num_images, 12, 12, NUM_PROTOS, generator=generator)),
            "anchors": anchors}


def image_outputs(outputs, image):
    return {key: value if key == "anchors" else value[image:image + 1] for key, value in outputs.items()}


def assert_same_detections(found, expected):
    assert found.keys() == expected.keys()
    for key in found:
        assert torch.equal(found[key], expected[key]), key


def test_output_types_and_shapes():
    found = YolactPostProcessor()(synthetic_outputs(), [(30, 40), (50, 20)])
    for result, (height, width) in zip(found, [(30, 40), (50, 20)]):
        count = result["scores"].numel()
        assert count > 0
        assert result["boxes"].dtype == torch.float32 and result["boxes"].shape == (count, 4)
        assert result["labels"].dtype == torch.int64 and result["labels"].max() < NUM_CLASSES
        assert result["scores"].dtype == torch.float32
        assert torch.all(result["scores"][:-1] >= result["scores"][1:])
        assert result["masks"].dtype == torch.bool and result["masks"].shape == (count, height, width)
        assert result["boxes"][:, 0::2].max() <= width and result["boxes"][:, 1::2].max() <= height
        assert result["boxes"].min() >= 0


@pytest.mark.parametrize("mask_format", ["bool", "rle", "none"])
def test_an_image_without_detections_in_a_batch(mask_format):
    outputs = synthetic_outputs(empty_images=(1,))
    found = YolactPostProcessor()(outputs, [(30, 40), (50, 20)], mask_format=mask_format)
    assert found[0]["scores"].numel() > 0
    empty = found[1]
    assert empty["boxes"].shape == (0, 4) and empty["boxes"].dtype == torch.float32
    assert empty["labels"].shape == (0,) and empty["labels"].dtype == torch.int64
    assert empty["scores"].shape == (0,) and empty["scores"].dtype == torch.float32
    if mask_format == "bool":
        assert empty["masks"].shape == (0, 50, 20) and empty["masks"].dtype == torch.bool
    elif mask_format == "rle":
        assert empty["masks"] == []
    else:
        assert "masks" not in empty


@pytest.mark.parametrize("nms_method", ["fast", "cross_class", "standard"])
def test_batch_equals_images_one_by_one(nms_method):
    outputs, sizes = synthetic_outputs(num_images=3, seed=1), [(30, 40), (50, 20), (16, 16)]
    postprocessor = YolactPostProcessor(nms_method=nms_method, mask_chunk_size=5)
    batched = postprocessor(outputs, sizes)
    for image, size in enumerate(sizes):
        assert_same_detections(batched[image], postprocessor(image_outputs(outputs, image), [size])[0])


@pytest.mark.parametrize("nms_method,nms", [("fast", fast_nms), ("cross_class", cross_class_fast_nms),
                                            ("standard", standard_nms)])
def test_nms_method_dispatch(nms_method, nms):
    outputs = synthetic_outputs(seed=2)
    probs = outputs["cls_logits"][0].softmax(-1)
    boxes = decode_boxes(outputs["box_deltas"][0], outputs["anchors"])
    candidates = select_candidates(probs, boxes, outputs["mask_coeffs"][0], 0.05)
    options = {"iou_threshold": 0.4, "top_k": 20}
    if nms_method != "cross_class":
        options["max_detections"] = 7
    expected = nms(*candidates, **options)
    found = YolactPostProcessor(nms_method=nms_method, nms_threshold=0.4, top_k=20, max_detections=7).detect(
        probs[None], outputs["box_deltas"][:1], outputs["mask_coeffs"][:1], outputs["anchors"])[0]
    for key in ("boxes", "labels", "scores", "mask_coeffs"):
        assert torch.equal(found[key], expected[key]), key


@pytest.mark.parametrize("crop_at_image_size, interpolate", [(False, "probability"), (True, "probability"),
                                                              (True, "logit")])
def test_forward_is_softmax_then_detect_then_to_image(crop_at_image_size, interpolate):
    outputs, size = synthetic_outputs(seed=3), (33, 47)
    postprocessor = YolactPostProcessor(mask_threshold=0.4, crop_at_image_size=crop_at_image_size,
                                        mask_interpolation=interpolate)
    probs = outputs["cls_logits"].softmax(-1)
    relative = postprocessor.detect(probs, outputs["box_deltas"], outputs["mask_coeffs"],
                                    outputs["anchors"])[0]
    found = postprocessor(outputs, [size, size])[0]
    assert torch.equal(found["boxes"], pixel_boxes(relative["boxes"], size))
    expected_masks = assemble_masks(outputs["prototypes"][0], relative["mask_coeffs"], relative["boxes"],
                                    size, threshold=0.4, crop_at_image_size=crop_at_image_size,
                                    interpolate=interpolate)
    assert torch.equal(found["masks"], expected_masks)
    rles = postprocessor(outputs, [size, size], mask_format="rle")[0]["masks"]
    assert rles == encode_masks_rle(outputs["prototypes"][0], relative["mask_coeffs"], relative["boxes"],
                                    size, threshold=0.4, crop_at_image_size=crop_at_image_size,
                                    interpolate=interpolate)


def test_candidates_need_a_class_score_strictly_above_the_threshold():
    class_probs = torch.tensor([[0.9, 0.05, 0.03, 0.02], [0.8, 0.0501, 0.1, 0.0499], [0.4, 0.3, 0.2, 0.1]])
    boxes, coeffs = torch.rand(3, 4), torch.rand(3, 2)
    kept_boxes, scores, kept_coeffs = select_candidates(class_probs, boxes, coeffs, 0.05)
    assert torch.equal(kept_boxes, boxes[1:]) and torch.equal(kept_coeffs, coeffs[1:])
    assert torch.equal(scores, class_probs[1:, 1:].T)  # (C, n)


def test_score_threshold_is_applied_after_nms():
    outputs = synthetic_outputs(seed=4)
    everything = YolactPostProcessor()(outputs, [(20, 20)] * 2, mask_format="none")
    filtered = YolactPostProcessor(score_threshold=0.3)(outputs, [(20, 20)] * 2, mask_format="none")
    for all_found, kept in zip(everything, filtered):
        above = all_found["scores"] > 0.3
        assert 0 < above.sum() < above.numel()
        for key in ("boxes", "labels", "scores"):
            assert torch.equal(kept[key], all_found[key][above])


def test_pixel_boxes_order_and_clamp():
    relative = torch.tensor([[-0.1, 0.2, 0.5, 1.3], [0.75, 0.5, 0.25, 0.1], [1.2, 1.1, 1.5, 1.6]])
    expected = torch.tensor([[0.0, 20.0, 100.0, 100.0], [50.0, 10.0, 150.0, 50.0],
                             [200.0, 100.0, 200.0, 100.0]])
    assert torch.equal(pixel_boxes(relative, (100, 200)), expected)


def test_rejects_unknown_options():
    with pytest.raises(ValueError, match="nms_method"):
        YolactPostProcessor(nms_method="soft")
    with pytest.raises(ValueError, match="mask_format"):
        YolactPostProcessor()(synthetic_outputs(), [(8, 8)] * 2, mask_format="polygon")


def test_maskness_is_the_mean_probability_over_the_pixels_above_the_threshold():
    probabilities = torch.tensor([[0.9, 0.6], [0.2, 0.5]], dtype=torch.float64)  # 0.5 is not above 0.5
    prototypes = torch.logit(probabilities)[:, :, None]  # (2, 2, 1): coefficient 1 gives them back
    detections = {"boxes": torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]], dtype=torch.float64),
                  "labels": torch.tensor([0, 1]), "scores": torch.tensor([0.8, 0.4], dtype=torch.float64),
                  "mask_coeffs": torch.tensor([[1.0], [-1.0]], dtype=torch.float64)}
    found = YolactPostProcessor(mask_threshold=0.5).rescore_by_maskness(detections, prototypes)
    # mask 0: 0.9 and 0.6 are on, maskness 0.75; mask 1 (1 - p: 0.1, 0.4, 0.8, 0.5): 0.8 alone is on
    expected_maskness = torch.tensor([0.75, 0.8], dtype=torch.float64)
    torch.testing.assert_close(found["maskness"], expected_maskness, rtol=0, atol=1e-12)
    torch.testing.assert_close(found["mask_scores"], detections["scores"] * expected_maskness, rtol=0,
                               atol=1e-12)
    assert torch.equal(found["scores"], detections["scores"])  # boxes keep their class scores
    nothing_on = YolactPostProcessor(mask_threshold=0.95).rescore_by_maskness(detections, prototypes)
    assert nothing_on["maskness"].tolist() == [0.0, 0.0]


def test_maskness_multiplies_the_mask_iou_rescoring_and_forward_applies_it():
    outputs, size = synthetic_outputs(seed=4), (30, 40)
    plain = YolactPostProcessor(mask_threshold=0.35)
    probs = outputs["cls_logits"].softmax(-1)
    relative = plain.detect(probs, outputs["box_deltas"], outputs["mask_coeffs"], outputs["anchors"])[0]
    masks = mask_probabilities(outputs["prototypes"][0], relative["mask_coeffs"], relative["boxes"])
    on = masks > 0.35
    maskness = (masks * on).sum(dim=(1, 2)) / on.sum(dim=(1, 2)).clamp(min=1)
    found = YolactPostProcessor(mask_threshold=0.35, maskness_rescore=True)(outputs, [size, size])[0]
    assert torch.equal(found["scores"], relative["scores"].float())
    torch.testing.assert_close(found["mask_scores"], relative["scores"] * maskness, rtol=0, atol=0)
    with_iou = plain.rescore_by_maskness({**relative, "mask_scores": relative["scores"] * 0.5},
                                         outputs["prototypes"][0])
    torch.testing.assert_close(with_iou["mask_scores"], relative["scores"] * 0.5 * maskness, rtol=0, atol=0)


def test_unknown_mask_interpolation_is_refused():
    with pytest.raises(ValueError, match="mask_interpolation must be one of"):
        YolactPostProcessor(mask_interpolation="nearest")
