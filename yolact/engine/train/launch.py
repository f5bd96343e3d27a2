"""``train.py``'s engine: build everything from the config, resume, train, validate, evaluate."""
import functools
import logging
import random
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from yolact.build import build_criterion, build_dataset, build_model, build_postprocessor, with_num_classes
from yolact.config import Config, apply_overrides, dump_config
from yolact.engine.checkpoint import load_checkpoint, restore_rng_state
from yolact.engine.train.data_feed import make_train_batches, make_val_loader
from yolact.engine.train.hooks import Checkpointer, ValidationHook
from yolact.engine.train.lr_schedule import autoscale_schedule, learning_rate_at
from yolact.engine.train.monitor import TrainMonitor
from yolact.engine.performance_advice import log_performance_advice
from yolact.engine.train.run_folder import find_resume_checkpoint, new_run_folder
from yolact.engine.train.trainer import Trainer
from yolact.engine.train.validation import make_evaluate_fn, make_visualize_fn
from yolact.errors import YolactError
from yolact.optimize.nchw_backward_conv import to_channels_last_for_training
from yolact.utils.distributed import barrier, cleanup_distributed, init_distributed

__all__ = ["launch_training", "select_device", "prepare_data"]

logger = logging.getLogger("yolact")
BASE_BATCH_SIZE = 8  # the reference's default batch, the unit of autoscaling


def select_device(name: str, local_rank: int = 0) -> torch.device:
    """"auto" -> this rank's GPU when CUDA is available, else the CPU."""
    if name == "auto":
        name = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise YolactError(f"train.device={name}: CUDA is not available on this machine")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def prepare_data(config: Config, is_main: bool) -> None:
    """Create the synthetic shapes dataset when the config asks for it and it is missing."""
    if not config.data.make_shapes or Path(config.data.train_annotations).is_file():
        return
    if is_main:
        from yolact.data.shapes import make_shapes_dataset

        root = Path(config.data.train_annotations).parent.parent
        logger.info(f"making the synthetic shapes dataset in {root}")
        make_shapes_dataset(root)
    barrier()


def _scaled_schedule(config: Config):
    train_cfg = config.train
    if not train_cfg.autoscale or train_cfg.batch_size == BASE_BATCH_SIZE:
        return train_cfg.lr, train_cfg.max_iter, tuple(train_cfg.lr_steps)
    return autoscale_schedule(batch_size=train_cfg.batch_size, base_batch_size=BASE_BATCH_SIZE, lr=train_cfg.lr,
                              max_iter=train_cfg.max_iter, lr_steps=train_cfg.lr_steps)


def _load_resume(resume: Optional[str], config: Config, config_name: str):
    if resume is None:
        return None
    path = find_resume_checkpoint(resume, Path(config.train.output_dir), Path(config_name).stem)
    checkpoint = load_checkpoint(path)
    if "iteration" not in checkpoint:
        raise YolactError(f"{path}: a bare model state_dict cannot be resumed; use it as pretrained weights")
    logger.info(f"resuming from {path} at iteration {checkpoint['iteration']}")
    checkpoint["path"] = path
    return checkpoint


def launch_training(config: Config, *, config_name: str, run_name: Optional[str] = None,
                    resume: Optional[str] = None, overrides=(), final_eval: bool = True) -> int:
    """Train as ``config`` says; returns the process exit code.

    With ``resume`` the checkpoint's own config is used, with ``overrides`` applied on top
    (e.g. a longer ``train.max_iter``).
    """
    device_type = "cuda" if config.train.device != "cpu" and torch.cuda.is_available() else "cpu"
    dist_info = init_distributed(device_type)
    try:
        return _train(config, config_name, run_name, resume, overrides, final_eval, dist_info)
    finally:
        cleanup_distributed()


def _train(config, config_name, run_name, resume, overrides, final_eval, dist_info) -> int:
    checkpoint = _load_resume(resume, config, config_name)
    if checkpoint is not None:
        config = apply_overrides(checkpoint["config"], overrides, source=str(checkpoint["path"]))
    train_cfg = config.train
    if train_cfg.num_threads:
        torch.set_num_threads(train_cfg.num_threads)
    device = select_device(train_cfg.device, dist_info.local_rank)
    seed_everything(train_cfg.seed + dist_info.rank)
    config, train_set, val_set = _prepare_datasets(config, dist_info, final_eval)
    if train_cfg.batch_size % dist_info.world_size:
        raise YolactError(f"train.batch_size={train_cfg.batch_size} is not divisible by {dist_info.world_size} processes")
    batch_per_rank = train_cfg.batch_size // dist_info.world_size
    run_dir = _run_dir(config, config_name, run_name, checkpoint, dist_info.is_main)
    trainer = _make_trainer(config, checkpoint, device, dist_info, train_set, batch_per_rank)
    monitor = TrainMonitor(run_dir, start_iteration=trainer.state.iteration, max_iter=trainer.max_iter,
                           log_interval=train_cfg.log_interval, enabled=dist_info.is_main)
    checkpointer = Checkpointer(run_dir, config=config, class_names=train_set.class_names,
                                category_ids=train_set.category_ids, save_interval=train_cfg.save_interval,
                                enabled=dist_info.is_main)
    trainer.on_step, trainer.on_nonfinite_stop = monitor.log_step, checkpointer.save
    validation = _make_validation(config, val_set, device, monitor, checkpointer, dist_info.is_main)
    trainer.hooks = [checkpointer] + ([validation] if validation is not None and train_cfg.val_interval else [])
    try:
        state = trainer.train()
        checkpointer.save(trainer)
        if state.stop_reason is not None:
            logger.info(f"stopped by {state.stop_reason} at iteration {state.iteration}; checkpoint saved in "
                        f"{run_dir}/weights; continue with: python train.py --config {config_name} --resume {run_dir}")
            return 0
        logger.info(f"training finished at iteration {state.iteration}; weights in {run_dir}/weights")
        if final_eval and validation is not None and dist_info.is_main:
            _final_evaluation(trainer, validation, run_dir)
    finally:
        monitor.close()
    return 0


def _prepare_datasets(config: Config, dist_info, final_eval: bool):
    """-> (config with num_classes resolved, train set, val set or None)."""
    prepare_data(config, dist_info.is_main)
    train_set = build_dataset(config, "train")
    config = with_num_classes(config, config.model.num_classes or len(train_set.class_names))
    if len(train_set.class_names) != config.model.num_classes:
        raise YolactError(f"{config.data.train_annotations}: {len(train_set.class_names)} categories but "
                          f"model.num_classes is {config.model.num_classes}")
    wants_val = dist_info.is_main and (config.train.val_interval or final_eval)
    return config, train_set, build_dataset(config, "val") if wants_val else None


def _make_trainer(config: Config, checkpoint, device, dist_info, train_set, batch_per_rank: int) -> Trainer:
    """Model, loss, SGD, scaler and batches, restored from ``checkpoint`` when resuming."""
    train_cfg = config.train
    base_lr, max_iter, lr_steps = _scaled_schedule(config)
    model = build_model(config, pretrained=None if checkpoint is not None else "config")
    if checkpoint is None and config.model.init_weights:
        _initialise_from(model, Path(config.model.init_weights))
    model.set_bn_frozen(batch_per_rank < train_cfg.freeze_bn_below)
    model.to(device)
    if train_cfg.channels_last:
        to_channels_last_for_training(model, device)
    log_performance_advice(device, amp=train_cfg.amp)
    optimizer = torch.optim.SGD(model.parameters(), lr=base_lr, momentum=train_cfg.momentum,
                                weight_decay=train_cfg.weight_decay)
    scaler = torch.amp.GradScaler(device.type) if train_cfg.amp == "fp16" else None
    start_iteration, best_mask_ap = 0, -1.0
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scaler is not None and checkpoint.get("scaler"):
            scaler.load_state_dict(checkpoint["scaler"])
        start_iteration, best_mask_ap = int(checkpoint["iteration"]), float(checkpoint.get("best_mask_ap", -1.0))
        restore_rng_state(checkpoint.get("rng"))
    train_model = model
    if dist_info.distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    batches = make_train_batches(train_set, config, batch_per_rank=batch_per_rank, start_iteration=start_iteration,
                                 rank=dist_info.rank, world_size=dist_info.world_size, pin_memory=device.type == "cuda")
    trainer = Trainer(model=train_model, criterion=build_criterion(config).to(device), optimizer=optimizer,
                      batches=batches, device=device,
                      lr_at=functools.partial(learning_rate_at, base_lr=base_lr, warmup_init_lr=train_cfg.warmup_init_lr,
                                              warmup_iters=train_cfg.warmup_iters, lr_steps=lr_steps,
                                              gamma=train_cfg.gamma),
                      max_iter=max_iter, amp=train_cfg.amp, scaler=scaler, grad_clip=train_cfg.grad_clip,
                      max_nonfinite=train_cfg.max_nonfinite, channels_last=train_cfg.channels_last)
    trainer.state.iteration, trainer.state.best_mask_ap = start_iteration, best_mask_ap
    return trainer


def _make_validation(config: Config, val_set, device, monitor, checkpointer, is_main: bool):
    if val_set is None:
        return None
    postprocessor = build_postprocessor(config)
    return ValidationHook(
        interval=config.train.val_interval,
        evaluate=make_evaluate_fn(postprocessor, make_val_loader(val_set, config), val_set, device,
                                  config.train.val_max_images),
        visualize=make_visualize_fn(postprocessor, val_set, device, config.train.val_visualize),
        monitor=monitor, checkpointer=checkpointer, is_main=is_main)


def _initialise_from(model: torch.nn.Module, path: Path) -> None:
    """Fine-tuning start: load a checkpoint's model weights, class layers may differ."""
    from yolact.modeling.reference_weights import load_model_weights

    reinitialised = load_model_weights(model, load_checkpoint(path)["model"])
    logger.info(f"initialised from {path}" + (f" ({len(reinitialised)} class-dependent tensors re-initialised)"
                                              if reinitialised else ""))


def _run_dir(config, config_name, run_name, checkpoint, is_main) -> Optional[Path]:
    if not is_main:
        return None
    if checkpoint is not None:
        return Path(checkpoint["path"]).parent.parent
    run_dir = new_run_folder(Path(config.train.output_dir), run_name or Path(config_name).stem,
                             exact=run_name is not None)
    (run_dir / "config.yaml").write_text(dump_config(config))
    logger.info(f"run folder: {run_dir}")
    return run_dir


def _final_evaluation(trainer, validation: ValidationHook, run_dir: Path) -> None:
    metrics = validation.run(trainer)
    summary = getattr(validation.evaluate, "last_summary", "")
    print(summary)
    (run_dir / "eval_summary.txt").write_text(summary)
    logger.info(f"final mask AP {metrics.get('segm/AP', float('nan')):.4f}, box AP "
                f"{metrics.get('bbox/AP', float('nan')):.4f}; summary in {run_dir / 'eval_summary.txt'}")
