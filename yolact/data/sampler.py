"""An infinite, resumable, rank-sharded batch sampler.

Training is iteration-based, so the sampler is indexed by iteration: the batch of iteration
``i`` depends only on ``(seed, i, rank)``. Each element is a :class:`SampleKey`
``(index, epoch, seed)``, from which the dataset seeds the sample's augmentation. A run resumed
at iteration ``i`` therefore sees exactly the batches and augmentations an uninterrupted run
would have seen, whatever the number of workers.
"""
from typing import Iterator, List

import torch

from yolact.data.coco import SampleKey

__all__ = ["ResumableBatchSampler"]


class ResumableBatchSampler:
    """Yields ``[SampleKey, ...]`` batches forever, from ``start_iteration`` on.

    Args:
        dataset_size: number of samples.
        batch_size: samples per batch on this rank.
        seed: base seed of the shuffle and of the per-sample seeds.
        rank, world_size: this process's shard; each epoch's permutation is shared by all
            ranks and rank r takes the r-th slice of each global batch.
        start_iteration: iteration whose batch is yielded first.
    Each epoch uses ``dataset_size // (batch_size * world_size)`` full batches (the partial last
    batch is dropped, as the reference's DataLoader does). A dataset smaller than one global
    batch is trained on anyway, as detectron2's infinite sampler does: the epochs' permutations
    are read as one stream and each batch takes the next ``batch_size * world_size`` keys, so
    a batch holds every image once or more (each copy from another epoch, hence another
    augmentation).
    """

    def __init__(self, *, dataset_size: int, batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1, start_iteration: int = 0):
        self.global_batch = batch_size * world_size
        if dataset_size < 1 or batch_size < 1:
            raise ValueError(f"need at least one image and one per batch (got {dataset_size}, {batch_size})")
        self.dataset_size, self.batch_size, self.seed = dataset_size, batch_size, seed
        self.rank, self.start_iteration = rank, start_iteration
        self.iterations_per_epoch = dataset_size // self.global_batch  # 0: smaller than one batch
        self.repeats_images = self.iterations_per_epoch == 0

    def _permutation(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.dataset_size, generator=generator)

    def batch_at(self, iteration: int, permutation: torch.Tensor = None) -> List[SampleKey]:
        """The sample keys of this rank at ``iteration``."""
        if self.repeats_images:
            return self._streamed_batch_at(iteration)
        epoch, step = divmod(iteration, self.iterations_per_epoch)
        if permutation is None:
            permutation = self._permutation(epoch)
        first = step * self.global_batch + self.rank * self.batch_size
        indices = permutation[first:first + self.batch_size].tolist()
        return [SampleKey(index, epoch, self.seed) for index in indices]

    def _streamed_batch_at(self, iteration: int) -> List[SampleKey]:
        """A dataset smaller than one batch: positions of the stream of permutations."""
        first = iteration * self.global_batch + self.rank * self.batch_size
        keys = []
        for position in range(first, first + self.batch_size):
            epoch, offset = divmod(position, self.dataset_size)
            keys.append(SampleKey(int(self._permutation(epoch)[offset]), epoch, self.seed))
        return keys

    def __iter__(self) -> Iterator[List[SampleKey]]:
        iteration, epoch, permutation = self.start_iteration, None, None
        while self.repeats_images:
            yield self._streamed_batch_at(iteration)
            iteration += 1
        while True:
            current_epoch = iteration // self.iterations_per_epoch
            if current_epoch != epoch:
                epoch, permutation = current_epoch, self._permutation(current_epoch)
            yield self.batch_at(iteration, permutation)
            iteration += 1
