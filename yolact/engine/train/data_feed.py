"""Batches for the training loop and the validation loader, from a dataset and the config."""
from typing import Iterator

from torch.utils.data import DataLoader

from yolact.config import Config
from yolact.data.collate import collate_detections
from yolact.data.loader import seed_worker
from yolact.data.sampler import ResumableBatchSampler

__all__ = ["make_train_batches", "make_val_loader"]


def make_train_batches(dataset, config: Config, *, batch_per_rank: int, start_iteration: int, rank: int,
                       world_size: int, pin_memory: bool) -> Iterator:
    """An endless iterator of collated ``(images, targets)`` batches from ``start_iteration``."""
    data_cfg = config.data
    sampler = ResumableBatchSampler(dataset_size=len(dataset), batch_size=batch_per_rank, seed=config.train.seed,
                                    rank=rank, world_size=world_size, start_iteration=start_iteration)
    workers = data_cfg.num_workers
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers,
                        collate_fn=collate_detections, pin_memory=pin_memory and data_cfg.pin_memory,
                        persistent_workers=workers > 0 and data_cfg.persistent_workers,
                        worker_init_fn=seed_worker if workers > 0 else None)
    return iter(loader)


def make_val_loader(dataset, config: Config) -> DataLoader:
    """In-order loader of the validation set (batch 1: images keep their own original size)."""
    workers = min(config.data.num_workers, 2)
    return DataLoader(dataset, batch_size=1, shuffle=False, num_workers=workers, collate_fn=collate_detections,
                      worker_init_fn=seed_worker if workers > 0 else None)
