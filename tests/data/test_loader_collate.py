"""Batching and the seeded loaders: shapes, full batches, epochs, resume, worker independence, rank sharding."""
import cv2
import numpy as np
import pytest
import torch

from yolact.data import (CocoInstanceDataset, EvalTransform, SampleKey, TrainTransform, collate_detections,
                         make_train_loader, make_val_loader)

NUM_IMAGES, SIZE = 6, 32


@pytest.fixture
def train_dataset(coco_folder):
    images = [(i, f"{i}.png", 40, 48) for i in range(1, NUM_IMAGES + 1)]
    annotations = [{"id": 10 * i + k, "image_id": i, "category_id": 3, "iscrowd": 0,
                    "bbox": [4 + 20 * k, 6, 16, 20], "area": 320,
                    "segmentation": [[4 + 20 * k, 6, 20 + 20 * k, 6, 20 + 20 * k, 26, 4 + 20 * k, 26]]}
                   for i in range(1, NUM_IMAGES + 1) for k in range(i % 2 + 1)]
    image_dir, json_path = coco_folder(images, annotations, [{"id": 3, "name": "block"}])
    return CocoInstanceDataset(image_dir, json_path, transform=TrainTransform(input_size=SIZE))


def loader_for(dataset, **overrides):
    options = dict(batch_size=4, seed=3, num_workers=0, persistent_workers=True)
    options.update(overrides)
    return make_train_loader(dataset, **options)


def take(loader, count):
    """-> the first ``count`` batches of an endless loader, as :func:`run_epoch` gives them."""
    batches = iter(loader)
    return run_epoch(next(batches) for _ in range(count))


def run_epoch(loader):
    """-> [(images, image ids, boxes per image) per batch]."""
    return [(images, [t["image_id"] for t in targets], [t["boxes"] for t in targets])
            for images, targets in loader]


def assert_same_epochs(first, second):
    assert len(first) == len(second)
    for (images_a, ids_a, boxes_a), (images_b, ids_b, boxes_b) in zip(first, second):
        assert ids_a == ids_b and torch.equal(images_a, images_b)
        assert all(torch.equal(a, b) for a, b in zip(boxes_a, boxes_b))


def test_collate_stacks_images_and_keeps_targets_per_image(train_dataset):
    batch = [train_dataset[0], train_dataset[1], train_dataset[2]]
    images, targets = collate_detections(batch)
    assert images.shape == (3, 3, SIZE, SIZE) and images.dtype == torch.float32
    assert [t["image_id"] for t in targets] == [1, 2, 3]
    assert targets[1] is batch[1][1]


def test_full_batches_and_in_order_val_loader(train_dataset):
    epoch = take(loader_for(train_dataset), 1)  # 6 images, batch 4: one full batch per epoch
    assert [len(ids) for _, ids, _ in epoch] == [4]
    batches_of_3 = take(loader_for(train_dataset, batch_size=3), 2)  # one epoch: every image once
    assert sorted(i for _, ids, _ in batches_of_3 for i in ids) == list(range(1, NUM_IMAGES + 1))
    ordered = run_epoch(make_val_loader(train_dataset))
    assert [i for _, ids, _ in ordered for i in ids] == list(range(1, NUM_IMAGES + 1))


def test_epochs_differ_and_resume_replays(train_dataset):
    epoch0, epoch1 = take(loader_for(train_dataset), 2)
    assert not torch.equal(epoch0[0], epoch1[0])
    assert_same_epochs(take(loader_for(train_dataset, start_iteration=1), 1), [epoch1])
    # The same key gives the same sample outside the loader too.
    key = SampleKey(2, epoch=1, seed=3)
    assert torch.equal(train_dataset[key][0], train_dataset[key][0])


def test_workers_do_not_change_the_draws(train_dataset):
    # Use OpenCV's thread pool in the parent first: forked workers must still run (regression:
    # cv2.setNumThreads in a worker hung after that).
    cv2.resize(np.zeros((600, 600, 3), np.float32), (700, 700))
    in_process = take(loader_for(train_dataset), 2)  # two epochs
    with_workers = take(loader_for(train_dataset, num_workers=2), 2)
    assert_same_epochs(with_workers, in_process)


def test_rank_sharding(train_dataset):
    one_process = take(loader_for(train_dataset), 1)
    ranks = [take(loader_for(train_dataset, batch_size=2, rank=rank, world_size=2), 1) for rank in (0, 1)]
    assert ranks[0][0][1] + ranks[1][0][1] == one_process[0][1]
    assert torch.equal(torch.cat([ranks[0][0][0], ranks[1][0][0]]), one_process[0][0])


def test_eval_loader_is_deterministic(train_dataset):
    train_dataset.transform = EvalTransform(input_size=SIZE)
    loader = make_val_loader(train_dataset)
    epoch0, epoch1 = run_epoch(loader), run_epoch(loader)
    assert_same_epochs(epoch0, epoch1)
    image_np = train_dataset.read_image(train_dataset.records[0])
    assert image_np.shape == (40, 48, 3) and np.isfinite(epoch0[0][0].numpy()).all()
