"""DataLoader construction: seeded order, seeded augmentation, workers, distributed sharding.

Randomness, and where it comes from:
- the image order of epoch e is a permutation seeded with (seed + e) (``DistributedSampler``'s
  rule, also used on a single process with one replica);
- the augmentation of image i in epoch e draws from ``numpy.random.default_rng((seed, e, i))``:
  the sampler hands the dataset a :class:`SampleKey` (index, epoch, seed). The draws thus do
  not depend on the number of workers or processes, and a resumed run replays the same epochs;
- each worker's torch, ``random`` and global numpy seeds come from the loader's seeded
  generator (``seed_worker``), for any other code that draws from them.

The sampler counts epochs by itself (each pass over the loader is the next epoch); call
``loader.sampler.set_epoch(epoch)`` before a pass to choose the epoch, e.g. after a resume.
"""
import random
from typing import Iterator, List

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from yolact.data.coco import SampleKey
from yolact.data.collate import collate_detections

__all__ = ["EpochSampler", "seed_worker", "build_dataloader"]


class EpochSampler(Sampler):
    """Yields :class:`SampleKey` (index, epoch, seed) for this process's share of the images.

    Args:
        dataset: a sized dataset.
        shuffle: shuffle with a permutation seeded by (seed + epoch).
        seed: the run's seed.
        distributed: shard across the processes of the initialised ``torch.distributed``
            group (``DistributedSampler``: the last images are repeated to even out shards).
    """

    def __init__(self, dataset: Dataset, *, shuffle: bool, seed: int, distributed: bool = False):
        if distributed:
            self.index_sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed)
        else:
            self.index_sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=shuffle,
                                                    seed=seed)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch ``epoch`` (order and augmentation draws)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.index_sampler)

    def __iter__(self) -> Iterator[SampleKey]:
        epoch = self.epoch
        self.index_sampler.set_epoch(epoch)
        keys: List[SampleKey] = [SampleKey(int(index), epoch, self.seed) for index in self.index_sampler]
        self.epoch = epoch + 1
        return iter(keys)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed ``random`` and numpy's global RNG from torch's.

    torch has already seeded the worker with (loader generator's base seed + worker id).
    OpenCV's thread count is left alone: ``cv2.setNumThreads`` in a forked worker hangs when
    the parent process has already used OpenCV's thread pool.
    """
    worker_seed = torch.initial_seed() % 2 ** 32
    random.seed(worker_seed)
    np.random.seed(worker_seed)


def build_dataloader(dataset: Dataset, *, batch_size: int, shuffle: bool, num_workers: int,
                     pin_memory: bool, persistent_workers: bool, drop_last: bool, seed: int,
                     distributed: bool = False) -> DataLoader:
    """A DataLoader of ``(images [B, 3, S, S], [target, ...])`` batches (``collate_detections``).

    Args:
        dataset: a ``CocoInstanceDataset`` (or any dataset taking :class:`SampleKey` keys).
        batch_size: images per batch in this process.
        shuffle: shuffle every epoch (training).
        num_workers: worker processes (0 loads in the main process).
        pin_memory: pin batches for faster copies to an accelerator (ignored without one).
        persistent_workers: keep workers between epochs (ignored with 0 workers).
        drop_last: drop the last incomplete batch (training, as the reference).
        seed: the run's seed (order, augmentation, worker seeds).
        distributed: shard the images across the ``torch.distributed`` processes.
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    sampler = EpochSampler(dataset, shuffle=shuffle, seed=seed, distributed=distributed)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
        collate_fn=collate_detections, drop_last=drop_last,
        pin_memory=pin_memory and torch.accelerator.is_available(),
        persistent_workers=persistent_workers and num_workers > 0,
        worker_init_fn=seed_worker, generator=generator)
