"""Training iterations per second: data excluded and included, fp32/bf16/fp16, channels_last."""
import itertools

import torch

from yolact.build import build_criterion, build_dataset, build_model
from yolact.engine.performance_advice import cpu_has_native
from yolact.engine.runtime import configure_cpu
from yolact.engine.train.trainer import Trainer
from yolact.optimize.nchw_backward_conv import to_channels_last_for_training
from yolact.utils.synthetic import synthetic_targets
from yolact.utils.timing import time_interleaved_median_ms

__all__ = ["bench_train"]


def _amp_modes(device: torch.device, requested: str):
    """The requested modes; "auto": fp32, bf16 and fp16 on CUDA, and on CPU fp32 plus the low
    precisions the CPU runs natively (emulated ones take minutes per step)."""
    if requested != "auto":
        return requested.split(",")
    if device.type == "cuda":
        return ["off", "bf16", "fp16"]
    return ["off"] + [amp for amp in ("bf16",) if cpu_has_native(amp)]


def _trainer(config, device, batches, amp, channels_last, batch):
    model = build_model(config, pretrained=None)
    model.set_bn_frozen(batch < config.train.freeze_bn_below)
    model.to(device)
    if channels_last:
        to_channels_last_for_training(model, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    trainer = Trainer(model=model, criterion=build_criterion(config).to(device), optimizer=optimizer,
                      # lr 0: the same arithmetic as a real step, but the random-init weights cannot
                      # diverge into non-finite losses (whose skipped steps would look faster)
                      batches=batches, device=device, lr_at=lambda it: 0.0, max_iter=10 ** 9, amp=amp,
                      scaler=scaler, channels_last=channels_last)
    trainer.model.train()
    return trainer


def bench_train(args, device, config_for):
    """All variants are built first and then timed in turn, step by step, so that their ratios
    do not depend on when each ran."""
    batch = args.batch or 2
    config = config_for(args)
    configure_cpu(device, reuse_memory=config.train.reuse_cpu_memory)  # as training runs
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, args.size, args.size, generator=generator)
    targets = synthetic_targets(batch, args.objects, args.size, args.classes, generator)
    variants = {("excluded", amp, channels_last):
                _trainer(config, device, itertools.repeat((images, targets)), amp, channels_last, batch)
                for amp in _amp_modes(device, args.amp) for channels_last in (False, True)}
    variants[("included", "off", False)] = _trainer_with_data(args, device, config_for, batch)
    step_ms = time_interleaved_median_ms({key: trainer.run_step for key, trainer in variants.items()},
                                         repeats=args.repeats, warmup=args.warmup, device=device)
    baseline = next(iter(step_ms.values()))
    rows = [{"data": data, "amp": amp, "channels_last": channels_last, "batch": batch, "step_ms": ms,
             "iter_per_s": 1000.0 / ms, "speedup_vs_fp32": baseline / ms}
            for (data, amp, channels_last), ms in step_ms.items()]
    notes = [f"backbone {args.backbone} at {args.size}, {args.objects} objects per image, SGD step included; "
             f"'included' loads {args.config}'s training set with its augmentation ({config.data.num_workers} workers)",
             "variants timed in turn, one step each per round"]
    if device.type == "cpu" and args.amp == "auto" and not cpu_has_native("bf16"):
        notes.append(f"bf16 skipped: no native bf16 on this CPU ({torch.backends.cpu.get_cpu_capability()}); "
                     f"ask for it with --amp off,bf16")
    return rows, ["data", "amp", "channels_last", "batch", "step_ms", "iter_per_s", "speedup_vs_fp32"], notes


def _trainer_with_data(args, device, config_for, batch):
    from yolact.build import build_train_loader
    from yolact.engine.train.launch import prepare_data

    probe = config_for(args)
    prepare_data(probe, is_main=True)
    dataset = build_dataset(probe, "train")
    # the same class layer as the data-excluded rows (the set's labels fit in it), so that only
    # the data differs
    config = config_for(args, num_classes=max(args.classes, len(dataset.class_names)))
    batches = iter(build_train_loader(config, dataset, batch_per_rank=batch, start_iteration=0,
                                      pin_memory=device.type == "cuda"))
    return _trainer(config, device, batches, "off", False, batch)
