"""Per-image targets padded and concatenated on the device, an image without objects included."""
import torch

from yolact.loss.batch_targets import concatenate_targets, pad_per_image


def _target(boxes, labels):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    return {"boxes": boxes, "labels": torch.tensor(labels, dtype=torch.int64),
            "masks": torch.ones((boxes.shape[0], 2, 2), dtype=torch.uint8)}


TARGETS = [_target([[0, 0, 1, 1], [0, 0, 0.5, 0.5]], [3, 1]), _target([], []), _target([[0.5, 0.5, 1, 1]], [2])]


def test_pad_per_image_marks_the_real_rows():
    padded, valid = pad_per_image([t["labels"] for t in TARGETS], padding_value=-7)
    assert padded.tolist() == [[3, 1], [-7, -7], [2, -7]]
    assert valid.tolist() == [[True, True], [False, False], [True, False]]


def test_concatenated_targets_know_their_images():
    gt = concatenate_targets(TARGETS, device=torch.device("cpu"), dtype=torch.float64)
    assert gt.boxes.dtype == torch.float64 and gt.boxes.shape == (3, 4) and gt.masks.shape == (3, 2, 2)
    assert gt.labels.tolist() == [3, 1, 2]
    assert gt.image_index.tolist() == [0, 0, 2]
    assert gt.counts.tolist() == [2, 0, 1]
    assert gt.offsets.tolist() == [0, 2, 2]
