"""Loading + training augmentation throughput with 0, 1 and 2 workers."""
import dataclasses
import time

from yolact.build import build_dataset
from yolact.engine.data_feed import make_train_batches

__all__ = ["bench_data"]


def bench_data(args, device, config_for):
    from yolact.engine.launch import prepare_data

    probe = config_for(args)
    prepare_data(probe, is_main=True)
    dataset = build_dataset(probe, "train")
    batch = args.batch or 8
    rows = []
    for workers in (0, 1, 2):
        config = config_for(args, num_classes=len(dataset.class_names))
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, num_workers=workers,
                                                                      persistent_workers=False))
        batches = make_train_batches(dataset, config, batch_per_rank=batch, start_iteration=0, rank=0, world_size=1,
                                     pin_memory=False)
        for _ in range(args.warmup):
            next(batches)
        rates = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            next(batches)
            rates.append(batch / (time.perf_counter() - start))
        rates.sort()
        rows.append({"workers": workers, "batch": batch, "images_per_s": rates[len(rates) // 2],
                     "ms_per_image": 1000.0 / rates[len(rates) // 2]})
        del batches
    notes = [f"{args.config} training set at input {args.size}, full training augmentation"]
    return rows, ["workers", "batch", "images_per_s", "ms_per_image"], notes
