"""The eval transform against the reference's BaseTransform output (fixtures)."""
import numpy as np
import torch

from yolact.data import PIXEL_MEAN_BGR, PIXEL_STD_BGR, EvalTransform, eval_transform


def test_eval_transform_matches_reference(reference):
    images_bgr, expected = reference.dump["input"]["images_bgr"], reference.dump["input"]["images"]
    size = reference.input_size
    for image_bgr, reference_image in zip(images_bgr, expected):
        ours = eval_transform(image_bgr.numpy(), size)
        assert ours.shape == (3, size, size) and ours.dtype == torch.float32
        torch.testing.assert_close(ours, reference_image, rtol=0, atol=1e-5)


def test_eval_transform_constants_and_channel_order():
    assert PIXEL_MEAN_BGR == (103.94, 116.78, 123.68) and PIXEL_STD_BGR == (57.38, 57.12, 58.40)
    image = np.zeros((2, 2, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 20, 30  # B, G, R
    out = eval_transform(image, 2)
    expected_rgb = [(30 - 123.68) / 58.40, (20 - 116.78) / 57.12, (10 - 103.94) / 57.38]
    for channel, value in enumerate(expected_rgb):
        assert torch.allclose(out[channel], torch.full((2, 2), value), atol=1e-6)


def test_eval_transform_class_resizes_image_and_boxes():
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    instances = {"masks": np.ones((1, 30, 40), np.uint8), "boxes": np.array([[4, 3, 40, 30]], np.float32),
                 "labels": np.array([2]), "crowd_boxes": np.zeros((0, 4), np.float32)}
    tensor, target = EvalTransform(input_size=64)(image, instances)
    assert torch.equal(tensor, eval_transform(image, 64))
    assert torch.allclose(target["boxes"], torch.tensor([[0.1, 0.1, 1.0, 1.0]]))
    assert target["masks"].shape == (1, 64, 64) and int(target["masks"].sum()) == 64 * 64
    assert target["labels"].dtype == torch.int64 and target["labels"].tolist() == [2]
