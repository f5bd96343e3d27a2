"""uint8 images from the loaders, normalised on the device (issue 13): the same float32
arithmetic as the float path, applied to the rounded image."""
import numpy as np
import pytest
import torch

from yolact.data.collate import collate_detections
from yolact.data.transforms import PIXEL_STD_BGR, EvalTransform, TrainTransform, normalize_to_tensor
from yolact.data.uint8_images import PixelNormalizer, normalize_on_device, to_uint8_tensor

# a pixel rounds by at most 0.5, i.e. 0.5 / std after the normalisation; plus float32 rounding
QUANTISATION = 0.5 / min(PIXEL_STD_BGR) + 1e-6


def _instances(size=48):
    masks = np.zeros((1, size, size), np.uint8)
    masks[0, 8:30, 10:40] = 1
    return {"boxes": np.array([[10, 8, 40, 30]], np.float32), "labels": np.array([2]), "masks": masks,
            "crowd_boxes": np.zeros((0, 4), np.float32)}


def _image(seed=0, size=48):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3)).astype(np.uint8)


def test_normalised_uint8_is_bitwise_the_float_path_of_the_rounded_image():
    image = np.random.default_rng(1).uniform(-20, 280, (32, 40, 3)).astype(np.float32)
    as_uint8 = to_uint8_tensor(image)
    assert as_uint8.dtype == torch.uint8 and as_uint8.shape == (3, 32, 40)
    rounded = np.clip(np.rint(image), 0, 255).astype(np.float32)
    expected = normalize_to_tensor(rounded)
    assert torch.equal(PixelNormalizer()(as_uint8[None])[0], expected)
    assert torch.equal(normalize_on_device(as_uint8[None])[0], expected)


def test_float_batches_pass_through_unchanged():
    images = torch.randn(2, 3, 4, 4)
    assert normalize_on_device(images) is images


def test_eval_transform_uint8_within_half_a_grey_level_of_the_float_path():
    image, instances = _image(), _instances()
    float_image, float_target = EvalTransform(32)(image, instances)
    byte_image, byte_target = EvalTransform(32, uint8_output=True)(image, instances)
    assert byte_image.dtype == torch.uint8
    difference = (normalize_on_device(byte_image[None])[0] - float_image).abs().max().item()
    assert 0 < difference <= QUANTISATION  # the resize makes fractional pixels, rounded here
    assert all(torch.equal(float_target[key], byte_target[key]) for key in float_target)


@pytest.mark.parametrize("photometric", [False, True])
def test_train_transform_uint8_same_draws_same_targets(photometric):
    image, instances = _image(2), _instances()
    options = dict(photometric=photometric, expand=True, random_crop=True)
    float_image, float_target = TrainTransform(32, **options)(image, instances, np.random.default_rng(7))
    byte_image, byte_target = TrainTransform(32, uint8_output=True, **options)(image, instances,
                                                                                 np.random.default_rng(7))
    assert all(torch.equal(float_target[key], byte_target[key]) for key in float_target)
    normalised = normalize_on_device(collate_detections([(byte_image, byte_target)])[0])[0]
    # where the float path's pixel lies in [0, 255] the two agree within the rounding
    pixels = float_image * torch.tensor(PIXEL_STD_BGR[::-1]).view(3, 1, 1) + torch.tensor(
        (123.68, 116.78, 103.94)).view(3, 1, 1)
    inside = (pixels >= 0) & (pixels <= 255)
    assert (normalised - float_image)[inside].abs().max().item() <= QUANTISATION
    if not photometric:
        assert bool(inside.all())


@pytest.mark.slow
def test_training_and_validation_with_uint8_images(tmp_path):
    """train.py with data.uint8_images: uint8 batches through the loaders, normalised by the
    trainer and by the evaluator on the device; the same metrics file as the float path."""
    import train
    from tests.engine.tiny_run import make_tiny_shapes, tiny_overrides

    from yolact.build import build_dataset
    from yolact.config import load_config

    root = make_tiny_shapes(tmp_path / "shapes")
    overrides = tiny_overrides(root, tmp_path, **{"data.uint8_images": "true", "train.max_iter": 2})
    image, _ = build_dataset(load_config("shapes", overrides), "val")[0]
    assert image.dtype == torch.uint8
    assert train.main(["--config", "shapes", "--name", "u8"] + overrides) == 0
    assert (tmp_path / "u8" / "eval_summary.txt").is_file() and (tmp_path / "u8" / "weights" / "last.pth").is_file()


def test_loader_workers_ignore_sigint_and_sigterm():
    """SLURM signals every process: the workers keep loading while the main process saves."""
    import signal

    from yolact.data.loader import init_worker

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        init_worker(0)
        assert all(signal.getsignal(sig) is signal.SIG_IGN for sig in saved)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
