"""Training augmentation: boxes, masks and pixels stay consistent through every step (many seeds)."""
import numpy as np
import pytest
import torch

from yolact.data import PIXEL_MEAN_BGR, EvalTransform, TrainTransform
from yolact.data.geometric import (Sample, _crop_offset, discard_small_boxes, expand, mirror,
                                   random_sample_crop, resize)
from yolact.data.photometric import photometric_distort

SEEDS = range(30)
WIDTH, HEIGHT, INPUT_SIZE = 120, 90, 96


def make_instances(seed):
    """Four coloured rectangles, one per quadrant (no overlap), and a crowd box; BGR uint8 image.

    The label of each object is its index, which gives its colour."""
    rng = np.random.default_rng(1000 + seed)
    image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    masks, boxes, colours = np.zeros((4, HEIGHT, WIDTH), np.uint8), [], []
    for index, (cx, cy) in enumerate([(0, 0), (60, 0), (0, 45), (60, 45)]):
        w, h = rng.integers(6, 50), rng.integers(6, 40)
        x, y = cx + rng.integers(0, 60 - w), cy + rng.integers(0, 45 - h)
        masks[index, y:y + h, x:x + w] = 1
        colours.append([40 * index + 5, 200 - 30 * index, 17 * index])
        image[y:y + h, x:x + w] = colours[-1]
        boxes.append([x, y, x + w, y + h])
    instances = {"masks": masks, "boxes": np.array(boxes, np.float32), "labels": np.arange(4),
                 "crowd_boxes": np.array([[30, 20, 90, 70]], np.float32)}
    return image, instances, np.array(colours, np.float32)


def mask_boxes(sample):
    """Bounding boxes (xyxy, pixel edges) of the canvas masks."""
    height, width = sample.canvas_size
    _, masks = sample.window(0, 0, width, height)
    boxes = []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return np.array(boxes, np.float32).reshape(-1, 4), masks


def check(sample, colours=None, tolerance=0.0):
    height, width = sample.canvas_size
    assert len(sample.masks) == len(sample.boxes) == len(sample.labels)
    boxes_of_masks, masks = mask_boxes(sample)
    np.testing.assert_allclose(sample.boxes, boxes_of_masks, atol=tolerance + 1e-4)
    for boxes in (sample.boxes, sample.crowd_boxes):
        assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2] <= width) and np.all(boxes[:, 3] <= height)
        assert np.all(boxes[:, 2:] > boxes[:, :2])
    if colours is not None:  # the pixels under each mask are still its object's
        image, _ = sample.window(0, 0, width, height)
        for mask, colour in zip(masks, colours[sample.labels]):
            assert np.all(image[mask.astype(bool)] == colour)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_step_keeps_boxes_masks_and_pixels_consistent(seed):
    image, instances, colours = make_instances(seed)
    rng = np.random.default_rng(seed)
    sample = Sample.from_arrays(image.astype(np.float32), instances["masks"], instances["boxes"],
                                instances["labels"], instances["crowd_boxes"])
    check(sample, colours)
    for step in (lambda s: expand(s, rng, fill_bgr=PIXEL_MEAN_BGR), lambda s: random_sample_crop(s, rng),
                 lambda s: mirror(s, rng)):
        sample = step(sample)
        check(sample, colours)  # exact: integer shifts, crops and flips
        assert sample.num_instances >= 1  # the crop keeps at least one object
    sample = resize(sample, INPUT_SIZE)
    assert sample.image.shape == (INPUT_SIZE, INPUT_SIZE, 3)
    assert sample.masks.shape[1:] == (INPUT_SIZE, INPUT_SIZE)
    sample = discard_small_boxes(sample, 4.0)
    check(sample, tolerance=1.0)  # bilinear resampling moves mask edges by under a pixel
    assert np.all(sample.boxes[:, 2:] - sample.boxes[:, :2] >= 4.0)


@pytest.mark.parametrize("seed", SEEDS[:10])
def test_train_transform_output_is_consistent_and_seeded(seed):
    image, instances, _ = make_instances(seed)
    transform = TrainTransform(input_size=INPUT_SIZE)
    tensor, target = transform(image, instances, np.random.default_rng(seed))
    again_tensor, again = transform(image, instances, np.random.default_rng(seed))
    assert torch.equal(tensor, again_tensor) and all(torch.equal(target[k], again[k]) for k in target)
    assert tensor.shape == (3, INPUT_SIZE, INPUT_SIZE) and tensor.dtype == torch.float32
    assert target["masks"].shape == (len(target["labels"]), INPUT_SIZE, INPUT_SIZE)
    assert len(target["labels"]) >= 1
    for box, mask in zip(target["boxes"] * INPUT_SIZE, target["masks"]):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        mask_box = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()
        assert torch.allclose(box, mask_box, atol=1.0 + 1e-4)
    crowd = target["crowd_boxes"]
    assert crowd.shape[1] == 4 and bool(((crowd >= 0) & (crowd <= 1)).all())
    assert bool((crowd[:, 2:] > crowd[:, :2]).all())


def test_different_seeds_give_different_draws():
    image, instances, _ = make_instances(0)
    transform = TrainTransform(input_size=INPUT_SIZE)
    outputs = [transform(image, instances, np.random.default_rng(seed))[0] for seed in range(4)]
    assert not all(torch.equal(outputs[0], other) for other in outputs[1:])


@pytest.mark.parametrize("seed", SEEDS[:5])
def test_mirror_twice_is_identity_also_on_an_expanded_canvas(seed):
    image, instances, _ = make_instances(seed)
    sample = Sample.from_arrays(image.astype(np.float32), instances["masks"], instances["boxes"],
                                instances["labels"], instances["crowd_boxes"])
    expanded = expand(sample, np.random.default_rng([seed, 1]), fill_bgr=PIXEL_MEAN_BGR)
    for original in (sample, expanded):
        twice = mirror(mirror(original, None, force=True), None, force=True)
        assert twice.offset == original.offset and twice.canvas_size == original.canvas_size
        for name in ("image", "masks", "boxes", "crowd_boxes", "labels"):
            assert np.array_equal(getattr(twice, name), getattr(original, name))
        once = mirror(original, None, force=True)
        width, height = original.canvas_size[1], original.canvas_size[0]
        flipped = original.window(0, 0, width, height)[0][:, ::-1]
        assert np.array_equal(once.window(0, 0, width, height)[0], flipped)


def test_lazy_expand_equals_an_eager_canvas():
    image, instances, _ = make_instances(3)
    sample = Sample.from_arrays(image.astype(np.float32), instances["masks"], instances["boxes"],
                                instances["labels"], instances["crowd_boxes"])
    rng = np.random.default_rng(7)
    expanded = expand(sample, rng, fill_bgr=PIXEL_MEAN_BGR)
    while not expanded.is_lazy:
        expanded = expand(sample, rng, fill_bgr=PIXEL_MEAN_BGR)
    (left, top), (height, width) = expanded.offset, expanded.canvas_size
    eager = np.empty((height, width, 3), np.float32)
    eager[:] = PIXEL_MEAN_BGR
    eager[top:top + HEIGHT, left:left + WIDTH] = image
    eager_masks = np.zeros((4, height, width), np.uint8)
    eager_masks[:, top:top + HEIGHT, left:left + WIDTH] = instances["masks"]
    for x0, y0, x1, y1 in [(0, 0, width, height), (left + 3, top + 2, left + 50, top + 40), (0, 0, 5, 4),
                           (max(left - 7, 0), max(top - 5, 0), min(left + WIDTH + 2, width), top + 10)]:
        window_image, window_masks = expanded.window(x0, y0, x1, y1)
        assert np.array_equal(window_image, eager[y0:y1, x0:x1])
        assert np.array_equal(window_masks, eager_masks[:, y0:y1, x0:x1])


def test_crop_offset_quirk():
    rng = np.random.default_rng(0)
    quirky = np.array([_crop_offset(rng, 10.0, True) for _ in range(2000)])
    plain = np.array([_crop_offset(rng, 10.0, False) for _ in range(2000)])
    assert quirky.min() > 1.0 and quirky.max() <= 10.0  # numpy's uniform(low=W-w, high=1)
    assert plain.min() < 0.1 and plain.max() < 10.0
    small = np.array([_crop_offset(rng, 0.5, True) for _ in range(200)])
    assert small.min() >= 0.5 and small.max() < 1.0


def test_photometric_draws_on_a_grey_image():
    # On a grey image saturation and hue change nothing: the result is (v + delta) * alpha.
    for seed in range(20):
        out = photometric_distort(np.full((4, 4, 3), 100.0, np.float32), np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        value = 100.0 + (rng.uniform(-32, 32) if rng.integers(2) else 0.0)
        contrast_first = rng.integers(2)
        if contrast_first and rng.integers(2):
            value *= rng.uniform(0.5, 1.5)
        for _ in range(2):  # saturation, then hue
            if rng.integers(2):
                rng.uniform()
        if not contrast_first and rng.integers(2):
            value *= rng.uniform(0.5, 1.5)
        np.testing.assert_allclose(out, value, rtol=1e-5)


def test_without_augmentation_train_equals_eval():
    image, instances, _ = make_instances(1)
    plain = TrainTransform(input_size=INPUT_SIZE, photometric=False, expand=False, random_crop=False,
                           mirror=False)
    train_tensor, train_target = plain(image, instances, np.random.default_rng(0))
    eval_tensor, eval_target = EvalTransform(input_size=INPUT_SIZE)(image, instances)
    assert torch.equal(train_tensor, eval_tensor)
    assert torch.equal(train_target["masks"], eval_target["masks"])
    assert torch.allclose(train_target["boxes"], eval_target["boxes"], atol=1e-6)


def test_small_boxes_are_dropped_and_a_lone_small_object_survives_by_retrying():
    image = np.zeros((100, 100, 3), np.uint8)
    masks = np.zeros((2, 100, 100), np.uint8)
    masks[0, 10:13, 10:13], masks[1, 50:55, 60:65] = 1, 1  # 3 px (dropped) and 5 px (4.8 px at 96)
    instances = {"masks": masks, "boxes": np.array([[10, 10, 13, 13], [60, 50, 65, 55]], np.float32),
                 "labels": np.array([0, 1]), "crowd_boxes": np.zeros((0, 4), np.float32)}
    plain = TrainTransform(input_size=96, photometric=False, expand=False, random_crop=False, mirror=False)
    assert plain(image, instances, np.random.default_rng(0))[1]["labels"].tolist() == [1]
    lone = {key: value[1:] if key != "crowd_boxes" else value for key, value in instances.items()}
    for seed in range(15):  # expand would shrink it under 4 px; a redraw or the whole image keeps it
        _, target = TrainTransform(input_size=96)(image, lone, np.random.default_rng(seed))
        assert target["labels"].tolist() == [1]
        sizes = (target["boxes"][:, 2:] - target["boxes"][:, :2]) * 96
        assert bool((sizes >= 4.0 - 1e-4).all())
