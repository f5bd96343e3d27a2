"""Scale jitter, mosaic and copy-paste on masks, boxes and crowd boxes, against hand-computed results."""
import numpy as np
import pytest

from yolact.data.copy_paste import copy_paste
from yolact.data.geometric import Sample
from yolact.data.instances import boxes_from_masks
from yolact.data.mixing import SampleMixer
from yolact.data.mosaic import mosaic
from yolact.data.scale_jitter import resize_into_window, scale_jitter
from yolact.data.transforms import TrainTransform

FILL = (1.0, 2.0, 3.0)


def rect(height, width, y0, y1, x0, x1):
    mask = np.zeros((height, width), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def instances(masks, boxes, labels, crowd_boxes=()):
    masks = np.array(masks, np.uint8).reshape(len(labels), *np.shape(masks)[1:] or (0, 0))
    return {"masks": masks, "boxes": np.array(boxes, np.float32).reshape(-1, 4),
            "labels": np.array(labels, np.int64),
            "crowd_boxes": np.array(crowd_boxes, np.float32).reshape(-1, 4)}


def sample_10x10():
    """One 4x4 square at rows 2-5, cols 4-7 (box 4,2,8,6) and two crowd boxes."""
    image = np.arange(300, dtype=np.float32).reshape(10, 10, 3)
    return Sample.from_arrays(image, rect(10, 10, 2, 6, 4, 8)[None], np.array([[4, 2, 8, 6]], np.float32),
                              np.array([5]), np.array([[1, 1, 3, 3], [6, 0, 10, 4]], np.float32))


def test_2x_scale_then_crop_moves_and_clips_exactly():
    # 2x: the square becomes rows 4-11, cols 8-15 (box 8,4,16,12) on a 20x20 canvas; the 10x10
    # window at (10, 0) keeps cols 10-15 -> 0-5 and rows 4-9, box clipped to (0, 4, 6, 10).
    out = resize_into_window(sample_10x10(), 20, 10, 0, 10, FILL)
    np.testing.assert_array_equal(out.masks, rect(10, 10, 4, 10, 0, 6)[None])
    np.testing.assert_array_equal(out.boxes, [[0, 4, 6, 10]])
    np.testing.assert_array_equal(out.labels, [5])
    # crowd (1,1,3,3) -> (2,2,6,6) -> shifted out of the window: dropped;
    # crowd (6,0,10,4) -> (12,0,20,8) -> (2,0,10,8)
    np.testing.assert_array_equal(out.crowd_boxes, [[2, 0, 10, 8]])
    assert out.image.shape == (10, 10, 3) and out.canvas_size == (10, 10)


def test_half_scale_pads_with_the_fill_and_shifts_exactly():
    # 0.5x of a 20x20 picture whose square is rows 4-11, cols 8-15: rows 2-5, cols 4-7 on 10x10
    # (even edges: the linear resize is exact); the window at (-2, -1) puts it at rows 3-6, cols 6-9.
    image = np.full((20, 20, 3), 50.0, np.float32)
    big = Sample.from_arrays(image, rect(20, 20, 4, 12, 8, 16)[None], np.array([[8, 4, 16, 12]], np.float32),
                             np.array([0]), np.array([[0, 0, 20, 20]], np.float32))
    out = resize_into_window(big, 10, -2, -1, 10, FILL)
    np.testing.assert_array_equal(out.masks, rect(10, 10, 3, 7, 6, 10)[None])
    np.testing.assert_array_equal(out.boxes, [[6, 3, 10, 7]])
    np.testing.assert_array_equal(out.crowd_boxes, [[2, 1, 10, 10]])
    np.testing.assert_array_equal(out.image[0, 0], FILL)  # padding
    np.testing.assert_array_equal(out.image[:, :2], np.broadcast_to(FILL, (10, 2, 3)))
    np.testing.assert_array_equal(out.image[1:, 2:], 50.0)  # the picture


def test_window_that_misses_an_object_drops_it():
    out = resize_into_window(sample_10x10(), 10, 0, 6, 10, FILL)  # the square ends at row 6
    assert out.num_instances == 0 and out.masks.shape == (0, 10, 10)


def test_scale_jitter_draws_stay_inside_the_input():
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = scale_jitter(sample_10x10(), rng, 10, (0.5, 2.0), FILL)
        assert out.image.shape == (10, 10, 3) and out.masks.shape[1:] == (10, 10)
        assert (out.boxes >= 0).all() and (out.boxes <= 10).all()
        for mask, box in zip(out.masks, out.boxes):  # the mask lies inside its box (+- the resize's pixel)
            rows, cols = np.nonzero(mask)
            assert box[0] - 1 <= cols.min() and cols.max() < box[2] + 1
            assert box[1] - 1 <= rows.min() and rows.max() < box[3] + 1


def test_train_transform_without_scale_jitter_draws_as_before():
    image = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    inst = instances([rect(30, 40, 5, 20, 10, 30)], [[10, 5, 30, 20]], [0])
    default, explicit = TrainTransform(16), TrainTransform(16, scale_range=None)
    first = default(image, inst, np.random.default_rng(4))
    second = explicit(image, inst, np.random.default_rng(4))
    assert first[0].equal(second[0]) and first[1]["boxes"].equal(second[1]["boxes"])
    with pytest.raises(ValueError, match="scale_range"):
        TrainTransform(16, scale_range=(1.5, 0.5))


def four_parts():
    """Four 8x8 images of constant value 10, 20, 30, 40, with known objects and crowd boxes."""
    def part(value, masks, boxes, labels, crowd=()):
        return np.full((8, 8, 3), value, np.uint8), instances(masks, boxes, labels, crowd)
    return [part(10, [rect(8, 8, 2, 7, 4, 8)], [[4, 2, 8, 7]], [1], [[6, 6, 8, 8]]),
            part(20, [rect(8, 8, 0, 2, 0, 2)], [[0, 0, 2, 2]], [2]),
            part(30, [rect(8, 8, 0, 3, 0, 8)], [[0, 0, 8, 3]], [3]),
            part(40, [rect(8, 8, 0, 8, 0, 1), rect(8, 8, 2, 8, 4, 8)], [[0, 0, 1, 8], [4, 2, 8, 8]], [4, 5],
                 [[5, 5, 8, 8]])]


def test_mosaic_of_four_known_images():
    # centre (3, 5): part 0 is shifted by (-5, -3), part 1 by (3, -3), part 2 by (-5, 5), part 3 by (3, 5).
    image, out = mosaic(four_parts(), (3, 5), 8)
    expected_image = np.zeros((8, 8), np.uint8)
    expected_image[:5, :3], expected_image[:5, 3:] = 10, 20
    expected_image[5:, :3], expected_image[5:, 3:] = 30, 40
    np.testing.assert_array_equal(image, np.repeat(expected_image[..., None], 3, axis=2))
    # part 0's object: rows -1..3, cols -1..2 -> the 4x3 corner (12 of 20 px); part 1's lies above
    # the canvas; part 2's keeps rows 5-7, cols 0-2 (9 of 24 px); part 3's column keeps rows 5-7 at
    # x = 3 (3 of 8 px); part 3's second object keeps 1 of 24 px (< 10%): dropped.
    np.testing.assert_array_equal(out["labels"], [1, 3, 4])
    np.testing.assert_array_equal(out["boxes"], [[0, 0, 3, 4], [0, 5, 3, 8], [3, 5, 4, 8]])
    np.testing.assert_array_equal(out["masks"], [rect(8, 8, 0, 4, 0, 3), rect(8, 8, 5, 8, 0, 3),
                                                 rect(8, 8, 5, 8, 3, 4)])
    # crowd (6,6,8,8) of part 0 -> (1,3,3,5); crowd (5,5,8,8) of part 3 -> (8,10,11,13): outside, dropped.
    np.testing.assert_array_equal(out["crowd_boxes"], [[1, 3, 3, 5]])


def test_mosaic_resizes_each_part_to_the_tile():
    # a 4x4 part with a 2x2 square at rows 2-3, cols 0-1 becomes rows 4-7, cols 0-3 of 8x8 (2x, exact)
    small = (np.full((4, 4, 3), 7, np.uint8), instances([rect(4, 4, 2, 4, 0, 2)], [[0, 2, 2, 4]], [9]))
    empty = (np.zeros((8, 8, 3), np.uint8), instances(np.zeros((0, 8, 8)), [], []))
    image, out = mosaic([empty, empty, empty, small], (0, 0), 8)  # part 3 covers the canvas
    np.testing.assert_array_equal(image, 7)
    np.testing.assert_array_equal(out["masks"], [rect(8, 8, 4, 8, 0, 4)])
    np.testing.assert_array_equal(out["boxes"], [[0, 4, 4, 8]])
    np.testing.assert_array_equal(out["labels"], [9])


def copy_paste_case():
    target_image = np.full((8, 8, 3), 1, np.uint8)
    target = instances([rect(8, 8, 0, 4, 0, 6), rect(8, 8, 6, 8, 6, 8), rect(8, 8, 1, 3, 5, 7)],
                       [[0, 0, 6, 4], [5.5, 6, 8, 8], [5, 1, 7, 3]], [0, 1, 2], [[0, 0, 2, 2]])
    source_image = np.full((8, 8, 3), 9, np.uint8)
    source = instances([rect(8, 8, 0, 6, 4, 8), rect(8, 8, 7, 8, 0, 2)], [[4, 0, 8, 6], [0, 7, 2, 8]], [3, 4],
                       [[0, 0, 8, 8]])
    return target_image, target, source_image, source


def test_copy_paste_cuts_the_occluded_mask_and_recomputes_its_box():
    image, out = copy_paste(*copy_paste_case(), np.array([True, False]))
    pasted = rect(8, 8, 0, 6, 4, 8).astype(bool)
    np.testing.assert_array_equal(image[..., 0], np.where(pasted, 9, 1))
    # object 0 loses exactly cols 4-5 of rows 0-3 -> rows 0-3, cols 0-3, box (0, 0, 4, 4);
    # object 1 is untouched (its box stays 5.5, ...); object 2 is covered entirely: dropped.
    np.testing.assert_array_equal(out["labels"], [0, 1, 3])
    np.testing.assert_array_equal(out["masks"], [rect(8, 8, 0, 4, 0, 4), rect(8, 8, 6, 8, 6, 8),
                                                 rect(8, 8, 0, 6, 4, 8)])
    np.testing.assert_array_equal(out["boxes"], [[0, 0, 4, 4], [5.5, 6, 8, 8], [4, 0, 8, 6]])
    np.testing.assert_array_equal(out["crowd_boxes"], [[0, 0, 2, 2]])  # the target's; the source's not pasted


def test_copy_paste_flipped_source():
    # flipped, the pasted object covers cols 0-3 of rows 0-5 (box 0,0,4,6): object 0 keeps cols 4-5;
    # object 2 (cols 5-6) is untouched now.
    image, out = copy_paste(*copy_paste_case(), np.array([True, False]), flip=True)
    np.testing.assert_array_equal(image[..., 0], np.where(rect(8, 8, 0, 6, 0, 4), 9, 1))
    np.testing.assert_array_equal(out["labels"], [0, 1, 2, 3])
    np.testing.assert_array_equal(out["boxes"], [[4, 0, 6, 4], [5.5, 6, 8, 8], [5, 1, 7, 3], [0, 0, 4, 6]])
    np.testing.assert_array_equal(out["masks"][0], rect(8, 8, 0, 4, 4, 6))


def test_copy_paste_resizes_the_source_to_the_target():
    target_image, target, _, _ = copy_paste_case()
    source_image = np.full((4, 4, 3), 9, np.uint8)
    source = instances([rect(4, 4, 0, 2, 2, 4)], [[2, 0, 4, 2]], [3])  # 2x -> rows 0-3, cols 4-7
    _, out = copy_paste(target_image, target, source_image, source, np.array([True]))
    np.testing.assert_array_equal(out["masks"][-1], rect(8, 8, 0, 4, 4, 8))
    np.testing.assert_array_equal(out["boxes"][-1], [4, 0, 8, 4])


def test_boxes_from_masks_are_cocos_tight_boxes():
    masks = np.array([rect(5, 6, 1, 3, 2, 5), rect(5, 6, 4, 5, 0, 1)])
    np.testing.assert_array_equal(boxes_from_masks(masks), [[2, 1, 5, 3], [0, 4, 1, 5]])


def test_mixer_is_deterministic_per_generator_and_off_draws_nothing():
    parts = four_parts()
    draws = []

    def draw(rng):
        draws.append(int(rng.integers(4)))
        return parts[draws[-1]]

    mixer = SampleMixer(mosaic_prob=1.0, copy_paste_prob=1.0, mosaic_size=8)
    first = mixer(*parts[0], np.random.default_rng(2), draw)
    second = mixer(*parts[0], np.random.default_rng(2), draw)
    assert len(draws) == 8  # three for the mosaic, one for the paste, twice
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1]["boxes"], second[1]["boxes"])
    rng = np.random.default_rng(2)
    state = rng.bit_generator.state
    off = SampleMixer(mosaic_prob=0.0, copy_paste_prob=0.0, mosaic_size=8)
    image, out = off(*parts[0], rng, draw)
    assert image is parts[0][0] and out is parts[0][1] and rng.bit_generator.state == state
    with pytest.raises(ValueError, match="mosaic_prob"):
        SampleMixer(mosaic_prob=1.5, copy_paste_prob=0.0, mosaic_size=8)


def test_copy_paste_onto_an_empty_image_and_from_an_empty_one():
    target_image, target, source_image, source = copy_paste_case()
    empty = instances(np.zeros((0, 8, 8)), [], [])
    _, out = copy_paste(target_image, empty, source_image, source, np.array([False, True]))
    np.testing.assert_array_equal(out["labels"], [4])
    np.testing.assert_array_equal(out["boxes"], [[0, 7, 2, 8]])
    assert out["masks"].shape == (1, 8, 8) and out["crowd_boxes"].shape == (0, 4)
    image, out = copy_paste(target_image, target, source_image, empty, np.zeros(0, bool))
    assert image is target_image and out is target
