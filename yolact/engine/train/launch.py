"""``train.py``'s engine: build everything from the config, resume, then run the trainer with its hooks."""
import logging
from pathlib import Path
from typing import Optional

import torch

from yolact.build import (build_criterion, build_dataset, build_lr_schedule, build_model, build_optimizer,
                          build_postprocessor, build_train_loader, build_val_loader, with_num_classes)
from yolact.config import Config, apply_overrides, dump_config
from yolact.engine.checkpoint import load_checkpoint, restore_rng_state
from yolact.engine.performance_advice import log_performance_advice
from yolact.engine.runtime import seed_everything, select_device
from yolact.engine.train.hooks import BestCheckpointer, Checkpointer
from yolact.engine.train.monitor import TrainMonitor
from yolact.engine.train.run_folder import find_resume_checkpoint, new_run_folder
from yolact.engine.train.schedule_check import warn_about_schedule
from yolact.engine.train.trainer import TrainState, Trainer
from yolact.engine.train.validation_hook import ValidationHook, make_evaluate_fn, make_visualize_fn
from yolact.errors import YolactError
from yolact.optimize.nchw_backward_conv import to_channels_last_for_training
from yolact.utils.distributed import barrier, cleanup_distributed, init_distributed

__all__ = ["launch_training", "prepare_data"]

logger = logging.getLogger("yolact")


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
    if dist_info.is_main:
        warn_about_schedule(config)
    run_dir = _run_dir(config, config_name, run_name, checkpoint, dist_info.is_main)
    hooks = _make_hooks(config, run_dir, train_set, val_set, device, dist_info.is_main, final_eval)
    for hook in hooks if checkpoint is not None else ():
        hook.load_state_dict(checkpoint.get("hooks", {}).get(type(hook).__name__, {}))
    trainer = _make_trainer(config, checkpoint, device, dist_info, train_set, hooks)
    state = trainer.train()
    if state.stop_reason is not None:
        logger.info(f"stopped by {state.stop_reason} at iteration {state.iteration}; checkpoint saved in "
                    f"{run_dir}/weights; continue with: python train.py --config {config_name} --resume {run_dir}")
        return 0
    logger.info(f"training finished at iteration {state.iteration}; weights in {run_dir}/weights")
    if final_eval and state.validation is not None and dist_info.is_main:
        _report_final_evaluation(state.validation, run_dir)
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


def _make_hooks(config: Config, run_dir, train_set, val_set, device, is_main: bool, final_eval: bool) -> list:
    """In call order: periodic and last checkpoints, validation, best checkpoint, monitor."""
    train_cfg = config.train
    checkpointer = Checkpointer(run_dir, config=config, class_names=train_set.class_names,
                                category_ids=train_set.category_ids, save_interval=train_cfg.save_interval,
                                enabled=is_main, keep_checkpoints=train_cfg.keep_checkpoints)
    hooks = [checkpointer]
    if val_set is not None:
        postprocessor = build_postprocessor(config)
        hooks.append(ValidationHook(
            interval=train_cfg.val_interval, final=final_eval,
            evaluate=make_evaluate_fn(postprocessor, build_val_loader(config, val_set), val_set, device,
                                      train_cfg.val_max_images),
            visualize=make_visualize_fn(postprocessor, val_set, device, train_cfg.val_visualize)))
        hooks.append(BestCheckpointer(checkpointer))
    hooks.append(TrainMonitor(run_dir, log_interval=train_cfg.log_interval, enabled=is_main, plots=train_cfg.plots,
                              labels_dataset=train_set))
    return hooks


def _make_trainer(config: Config, checkpoint, device, dist_info, train_set, hooks) -> Trainer:
    """Model, loss, optimizer, scaler and batches, restored from ``checkpoint`` when resuming."""
    train_cfg = config.train
    batch_per_rank = train_cfg.batch_size // dist_info.world_size
    model = build_model(config, pretrained=None if checkpoint is not None else "config")
    if checkpoint is None and config.model.init_weights:
        _initialise_from(model, Path(config.model.init_weights))
    model.set_bn_frozen(batch_per_rank < train_cfg.freeze_bn_below)
    model.to(device)
    if train_cfg.channels_last:
        to_channels_last_for_training(model, device)
    log_performance_advice(device, amp=train_cfg.amp)
    optimizer = build_optimizer(config, model)
    scaler = torch.amp.GradScaler(device.type) if train_cfg.amp == "fp16" else None
    state = TrainState()
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scaler is not None and checkpoint.get("scaler"):
            scaler.load_state_dict(checkpoint["scaler"])
        state = TrainState(iteration=int(checkpoint["iteration"]),
                           best_mask_ap=float(checkpoint.get("best_mask_ap", -1.0)))
        restore_rng_state(checkpoint.get("rng"))
    train_model = model
    if dist_info.distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    loader = build_train_loader(config, train_set, batch_per_rank=batch_per_rank, start_iteration=state.iteration,
                                rank=dist_info.rank, world_size=dist_info.world_size,
                                pin_memory=device.type == "cuda")
    lr_at, max_iter = build_lr_schedule(config)
    return Trainer(model=train_model, criterion=build_criterion(config).to(device), optimizer=optimizer,
                   batches=iter(loader), device=device, lr_at=lr_at, max_iter=max_iter, amp=train_cfg.amp,
                   scaler=scaler, grad_clip=train_cfg.grad_clip, max_nonfinite=train_cfg.max_nonfinite,
                   channels_last=train_cfg.channels_last, hooks=hooks, state=state)


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


def _report_final_evaluation(result, run_dir: Path) -> None:
    print(result.summary)
    (run_dir / "eval_summary.txt").write_text(result.summary)
    logger.info(f"final mask AP {result.metrics.get('segm/AP', float('nan')):.4f}, box AP "
                f"{result.metrics.get('bbox/AP', float('nan')):.4f}; summary in {run_dir / 'eval_summary.txt'}")
