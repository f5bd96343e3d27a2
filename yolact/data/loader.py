"""The one place that builds DataLoaders: the training batches and the in-order validation loader.

Randomness, and where it comes from:
- the image order of epoch e is a permutation seeded with ``seed * 1_000_003 + e``, shared by
  all ranks (:class:`~yolact.data.sampler.ResumableBatchSampler`);
- the augmentation of image i in epoch e draws from ``numpy.random.default_rng((seed, e, i))``:
  the sampler hands the dataset a :class:`~yolact.data.coco.SampleKey` (index, epoch, seed).
  The draws thus depend neither on the number of workers or processes, and a run resumed at
  iteration i sees exactly the batches of an uninterrupted run;
- each worker's torch, ``random`` and global numpy seeds come from torch's worker seed
  (``seed_worker``), for any other code that draws from them.
"""
import logging
import random
import signal
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from yolact.data.collate import collate_detections
from yolact.data.sampler import ResumableBatchSampler

__all__ = ["seed_worker", "init_worker", "make_train_loader", "make_val_loader"]

logger = logging.getLogger("yolact")


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed ``random`` and numpy's global RNG from torch's.

    torch has already seeded the worker with (loader generator's base seed + worker id).
    OpenCV's thread count is left alone: ``cv2.setNumThreads`` in a forked worker hangs when
    the parent process has already used OpenCV's thread pool.
    """
    worker_seed = torch.initial_seed() % 2 ** 32
    random.seed(worker_seed)
    np.random.seed(worker_seed)


def init_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: ignore SIGINT/SIGTERM, then :func:`seed_worker`.

    SLURM and Ctrl-C signal the whole process group: the workers keep loading while the main
    process finishes its step and saves, then shuts them down as usual.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    seed_worker(worker_id)


def make_train_loader(dataset: Dataset, *, batch_size: int, seed: int, start_iteration: int = 0, rank: int = 0,
                      world_size: int = 1, num_workers: int = 0, pin_memory: bool = False,
                      persistent_workers: bool = False) -> DataLoader:
    """An endless loader of ``(images (B,3,S,S), [target, ...])`` batches from ``start_iteration``
    (images float32 normalised, or uint8 RGB with the transforms' ``uint8_output``).

    Args:
        dataset: a ``CocoInstanceDataset`` (or any dataset taking :class:`SampleKey` keys).
        batch_size: images per batch on this rank (full batches only, as the reference; a
            dataset smaller than one batch fills each batch by repeating its images, with a warning).
        seed: the run's seed (order and augmentation draws).
        start_iteration: the iteration whose batch comes first (resume).
        rank, world_size: this process's shard of every global batch.
        num_workers: worker processes (0 loads in the main process).
        pin_memory, persistent_workers: DataLoader options (the latter ignored with 0 workers).
    """
    sampler = ResumableBatchSampler(dataset_size=len(dataset), batch_size=batch_size, seed=seed, rank=rank,
                                    world_size=world_size, start_iteration=start_iteration)
    if sampler.repeats_images and rank == 0:
        source = getattr(dataset, "annotation_file", "the dataset")
        logger.warning(f"{source}: {len(dataset)} images, fewer than one batch of {sampler.global_batch}; "
                       f"each batch repeats images (differently augmented)")
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, collate_fn=collate_detections,
                      pin_memory=pin_memory, persistent_workers=num_workers > 0 and persistent_workers,
                      worker_init_fn=init_worker if num_workers > 0 else None)


def make_val_loader(dataset: Dataset, *, num_workers: int = 0, rank: int = 0, world_size: int = 1,
                    max_images: Optional[int] = None, pin_memory: bool = False) -> DataLoader:
    """In-order loader of a validation set, batch 1 (images keep their own original size).

    Args:
        rank, world_size: this process's shard, images ``rank::world_size`` of the dataset order
            (the evaluator gathers the shards back in that order).
        max_images: only the first ``max_images`` images of the dataset order are sharded.
    """
    total = len(dataset) if max_images is None else min(len(dataset), max(max_images, 0))
    return DataLoader(dataset, batch_size=1, sampler=range(rank, total, world_size), num_workers=num_workers,
                      collate_fn=collate_detections, pin_memory=pin_memory,
                      worker_init_fn=init_worker if num_workers > 0 else None)
