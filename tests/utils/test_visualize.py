"""draw_detections: exact mask blending, boxes and labels only where expected, input untouched."""
import numpy as np
import torch

from yolact.utils.visualize import class_color, draw_detections, select_for_display, to_chw_rgb

HEIGHT, WIDTH = 100, 120
CLASS_NAMES = ["circle", "square"]


def blend(pixel, label, alpha=0.45):
    """(1 - alpha) * pixel + alpha * colour, rounded, as uint8."""
    color = np.asarray(class_color(label), np.float32)
    return np.rint((1.0 - alpha) * np.asarray(pixel, np.float32) + alpha * color).astype(np.uint8)


def scene():
    image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    image[:] = (90, 120, 150)
    masks = np.zeros((2, HEIGHT, WIDTH), bool)
    masks[0, 50:70, 40:80] = True   # strong "square", inside its box
    masks[1, 88:96, 8:18] = True    # weak "circle" near the bottom-left corner
    detections = {"boxes": np.array([[30, 40, 90, 80], [5, 85, 20, 98]], np.float32),
                  "labels": np.array([1, 0]), "scores": np.array([0.9, 0.2], np.float32), "masks": masks}
    return image, detections


def test_masks_blend_exactly_and_nothing_else_changes_outside_box_and_label():
    image, detections = scene()
    original = image.copy()
    drawn = draw_detections(image, detections, CLASS_NAMES, score_threshold=0.5)
    assert np.array_equal(image, original)  # input not modified
    assert drawn.dtype == np.uint8 and drawn.shape == image.shape
    inside = drawn[50:70, 40:80].reshape(-1, 3)
    assert np.array_equal(inside, np.broadcast_to(blend(image[0, 0], 1), inside.shape))
    color = np.array(class_color(1), np.uint8)
    assert np.array_equal(drawn[60, 30], color) and np.array_equal(drawn[80, 60], color)  # box outline
    changed = np.any(drawn != image, axis=2)
    allowed = np.zeros_like(changed)
    allowed[40:81, 30:91] = True  # the box and what is inside it
    allowed[0:41, 30:] = True     # the "square 0.90" label strip above the box
    assert not np.any(changed & ~allowed)
    assert np.any(np.all(drawn[0:40, 30:] == color, axis=2))  # the label strip is filled
    assert np.array_equal(drawn[85:99, 5:21], image[85:99, 5:21])  # the weak detection is hidden


def test_top_k_threshold_and_stacking_order():
    image, detections = scene()
    only_best = draw_detections(image, detections, CLASS_NAMES, top_k=1)
    assert np.array_equal(only_best, draw_detections(image, detections, CLASS_NAMES, score_threshold=0.5))
    both = draw_detections(image, detections, CLASS_NAMES, draw_boxes=False, draw_text=False)
    assert np.array_equal(both[90, 10], blend(image[0, 0], 0))
    # overlapping masks: the better detection is blended last, on top
    detections["masks"][1, 60, 50] = True
    stacked = draw_detections(image, detections, CLASS_NAMES, draw_boxes=False, draw_text=False)
    assert np.array_equal(stacked[60, 50], blend(blend(image[0, 0], 0), 1))
    assert list(select_for_display(detections["scores"], score_threshold=0.1, top_k=5)) == [0, 1]


def test_tensors_and_arrays_draw_the_same():
    image, detections = scene()
    as_tensors = {key: torch.from_numpy(np.asarray(value)) for key, value in detections.items()}
    assert np.array_equal(draw_detections(image, as_tensors, CLASS_NAMES),
                          draw_detections(image, detections, CLASS_NAMES))
    no_masks = dict(detections, masks=None)
    drawn = draw_detections(image, no_masks, CLASS_NAMES, draw_text=False)
    assert np.array_equal(drawn[60, 60], image[60, 60])  # no mask, box only


def test_class_colors_are_stable_and_distinct():
    colors = [class_color(label) for label in range(20)]
    assert colors == [class_color(label) for label in range(20)]
    assert len(set(colors)) == 20
    assert all(isinstance(c, int) and 0 <= c <= 255 for color in colors for c in color)


def test_chw_rgb_for_tensorboard():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    chw = to_chw_rgb(image)
    assert chw.shape == (3, 2, 3) and chw.dtype == np.uint8 and chw.flags["C_CONTIGUOUS"]
    assert np.array_equal(chw[0], image[:, :, 2]) and np.array_equal(chw[2], image[:, :, 0])


def drawn_sizes(side):
    """(label height, box line width) in pixels of one detection drawn on a black side x side picture."""
    image = np.zeros((side, side, 3), np.uint8)
    box = [side // 4, side // 2, 3 * side // 4, 3 * side // 4]
    detections = {"boxes": np.array([box], np.float32), "labels": np.array([0]), "scores": np.array([0.9])}
    boxes_only = draw_detections(image, detections, ["circle"], draw_text=False)
    column = boxes_only[:, side // 2].any(axis=1)  # the box's top and bottom edges cross the middle column
    line_width = int(column[: side * 5 // 8].sum())
    label_only = draw_detections(image, detections, ["circle"], draw_boxes=False)
    rows = np.nonzero(label_only.any(axis=(1, 2)))[0]
    return int(rows.max() - rows.min() + 1), line_width


def test_text_and_lines_scale_with_the_picture():
    from yolact.utils.visualize import drawing_sizes

    assert drawing_sizes(160, 160) == (0.3, 1) and drawing_sizes(1280, 720) == (1.0, 3)
    assert drawn_sizes(160) == (12, 1)
    assert drawn_sizes(1280) == (31, 3)  # was (16, 1) with a fixed font scale 0.5 and 1-pixel lines


def test_hiding_scores_keeps_the_name_only():
    image = np.zeros((160, 160, 3), np.uint8)
    detections = {"boxes": np.array([[40, 80, 120, 120]], np.float32), "labels": np.array([0]),
                  "scores": np.array([0.9])}
    with_score = draw_detections(image, detections, ["circle"], draw_boxes=False)
    name_only = draw_detections(image, detections, ["circle"], draw_boxes=False, draw_scores=False)
    columns = [np.nonzero(drawn.any(axis=(0, 2)))[0] for drawn in (name_only, with_score)]
    assert columns[0].max() - columns[0].min() < columns[1].max() - columns[1].min()
