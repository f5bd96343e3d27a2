"""Loading + training augmentation throughput with 0, 1 and 2 workers."""
import dataclasses
import time

from yolact.build import build_dataset, build_train_loader

__all__ = ["bench_data"]


def _augment_row(args) -> dict:
    """Median time of the full training augmentation of one 640x480 image with 5 masks."""
    import cv2
    import numpy as np
    import torch

    from yolact.data.transforms import TrainTransform

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    masks = np.zeros((5, 480, 640), np.uint8)
    boxes = []
    for k in range(5):
        x, y = int(rng.integers(0, 500)), int(rng.integers(0, 340))
        masks[k, y:y + 120, x:x + 130] = 1
        boxes.append([x, y, x + 130, y + 120])
    instances = {"masks": masks, "boxes": np.array(boxes, np.float32), "labels": np.arange(5),
                 "crowd_boxes": np.zeros((0, 4), np.float32)}
    transform = TrainTransform(input_size=args.size)
    times = []
    for seed in range(args.warmup + max(args.repeats, 50)):
        start = time.perf_counter()
        transform(image, instances, np.random.default_rng(seed))
        if seed >= args.warmup:
            times.append((time.perf_counter() - start) * 1000.0)
    torch.set_num_threads(threads)
    median = sorted(times)[len(times) // 2]
    return {"workers": "augment only", "batch": 1, "images_per_s": 1000.0 / median, "ms_per_image": median}


def bench_data(args, device, config_for):
    from yolact.engine.train.launch import prepare_data

    probe = config_for(args)
    prepare_data(probe, is_main=True)
    dataset = build_dataset(probe, "train")
    batch = args.batch or 8
    rows = []
    for workers in (0, 1, 2):
        config = config_for(args, num_classes=len(dataset.class_names))
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, num_workers=workers,
                                                                      persistent_workers=False))
        batches = iter(build_train_loader(config, dataset, batch_per_rank=batch, start_iteration=0))
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
    rows.append(_augment_row(args))
    notes = [f"{args.config} training set at input {args.size}, full training augmentation",
             "last row: TrainTransform alone on a 640x480 image with 5 instance masks, one thread"]
    return rows, ["workers", "batch", "images_per_s", "ms_per_image"], notes
