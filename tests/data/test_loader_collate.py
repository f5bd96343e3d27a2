"""Batching and the seeded DataLoader: shapes, drop_last, epochs, worker independence, DDP sharding."""
import cv2
import numpy as np
import pytest
import torch
import torch.distributed as dist

from yolact.data import (CocoInstanceDataset, EvalTransform, SampleKey, TrainTransform, build_dataloader,
                         collate_detections)

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
    options = dict(batch_size=4, shuffle=True, num_workers=0, pin_memory=True, persistent_workers=True,
                   drop_last=False, seed=3)
    options.update(overrides)
    return build_dataloader(dataset, **options)


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


def test_batches_and_drop_last(train_dataset):
    batches = run_epoch(loader_for(train_dataset))
    assert [len(ids) for _, ids, _ in batches] == [4, 2]
    assert sorted(i for _, ids, _ in batches for i in ids) == list(range(1, NUM_IMAGES + 1))
    assert [len(ids) for _, ids, _ in run_epoch(loader_for(train_dataset, drop_last=True))] == [4]
    ordered = run_epoch(loader_for(train_dataset, shuffle=False))
    assert [i for _, ids, _ in ordered for i in ids] == list(range(1, NUM_IMAGES + 1))


def test_epochs_differ_and_set_epoch_replays(train_dataset):
    loader = loader_for(train_dataset)
    epoch0, epoch1 = run_epoch(loader), run_epoch(loader)
    assert not torch.equal(epoch0[0][0], epoch1[0][0])
    loader.sampler.set_epoch(0)
    assert_same_epochs(run_epoch(loader), epoch0)
    # The same key gives the same sample outside the loader too.
    key = SampleKey(2, epoch=1, seed=3)
    assert torch.equal(train_dataset[key][0], train_dataset[key][0])


def test_workers_do_not_change_the_draws(train_dataset):
    # Use OpenCV's thread pool in the parent first: forked workers must still run (regression:
    # cv2.setNumThreads in a worker hung after that).
    cv2.resize(np.zeros((600, 600, 3), np.float32), (700, 700))
    in_process = loader_for(train_dataset)
    with_workers = loader_for(train_dataset, num_workers=2)
    for _ in range(2):  # two epochs, the workers persist
        assert_same_epochs(run_epoch(with_workers), run_epoch(in_process))


def test_distributed_sharding(train_dataset, tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        loader = loader_for(train_dataset, distributed=True)
        assert isinstance(loader.sampler.index_sampler, torch.utils.data.DistributedSampler)
        assert_same_epochs(run_epoch(loader), run_epoch(loader_for(train_dataset)))
    finally:
        dist.destroy_process_group()


def test_eval_loader_is_deterministic(train_dataset):
    train_dataset.transform = EvalTransform(input_size=SIZE)
    loader = loader_for(train_dataset, shuffle=False)
    epoch0, epoch1 = run_epoch(loader), run_epoch(loader)
    assert_same_epochs(epoch0, epoch1)
    image_np = train_dataset.read_image(train_dataset.records[0])
    assert image_np.shape == (40, 48, 3) and np.isfinite(epoch0[0][0].numpy()).all()
