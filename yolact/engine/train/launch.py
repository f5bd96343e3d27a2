"""``train.py``'s engine: build everything from the config, resume, then run the trainer with its hooks."""
import contextlib
import json
import logging
from pathlib import Path
from typing import Optional

import torch

from yolact.build import (build_criterion, build_dataset, build_ema_hook, build_lr_schedule, build_model,
                          build_num_workers,
                          build_optimizer, build_postprocessor, build_time_budget_hook, build_train_loader,
                          build_val_loader, with_num_classes)
from yolact.config import Config, apply_overrides, dump_config
from yolact.engine.checkpoint import load_checkpoint, restore_rng_state
from yolact.engine.performance_advice import cpu_precision_note, log_performance_advice
from yolact.engine.runtime import (checks_gradients, configure_cpu, configure_cuda, resolve_amp, seed_everything,
                                   select_device, set_training_memory_format)
from yolact.engine.train.close_mosaic import CloseMosaicHook
from yolact.engine.train.hooks import BestCheckpointer, Checkpointer
from yolact.engine.train.input_size_choice import InputSizeChoice, choose_time_input_size
from yolact.engine.train.monitor import TrainMonitor
from yolact.engine.train.run_folder import (create_run_folder, find_resume_checkpoint, last_checkpoint_note,
                                           plan_run_folder)
from yolact.engine.train.schedule_check import warn_about_schedule
from yolact.engine.train.time_budget import TimeBudgetHook
from yolact.engine.train.trainer import TrainState, Trainer
from yolact.engine.train.validation_hook import ValidationHook, make_evaluate_fn, make_visualize_fn
from yolact.errors import YolactError
from yolact.utils.atomic import atomic_write
from yolact.utils.distributed import barrier, cleanup_distributed, init_distributed, process_env
from yolact.utils.output_folders import (OutputWriteError, check_writable_folder, is_disk_full, remove_folder,
                                          write_error)

__all__ = ["launch_training", "prepare_data", "build_model_local_rank_first"]

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
    env = process_env()
    checkpoint = _load_resume(resume, config, config_name)
    if checkpoint is not None:
        config = apply_overrides(checkpoint["config"], overrides, source=str(checkpoint["path"]))
    device = select_device(config.train.device, world_size=env.world_size, local_rank=env.local_rank)
    configure_cuda(device)
    configure_cpu(device, reuse_memory=config.train.reuse_cpu_memory)
    dist_info = init_distributed(device.type)
    try:
        return _train(config, config_name, run_name, checkpoint, final_eval, device, dist_info)
    finally:
        cleanup_distributed()


def _train(config, config_name, run_name, checkpoint, final_eval, device, dist_info) -> int:
    run_dir = _plan_run_dir(config, config_name, run_name, checkpoint, dist_info.is_main)
    train_cfg = config.train
    if train_cfg.num_threads:
        torch.set_num_threads(train_cfg.num_threads)
    seed_everything(train_cfg.seed + dist_info.rank)
    config, train_set, val_set = _prepare_datasets(config, dist_info, final_eval, device)
    if train_cfg.batch_size % dist_info.world_size:
        raise YolactError(f"train.batch_size={train_cfg.batch_size} is not divisible by {dist_info.world_size} processes")
    config, train_set, val_set, choice = _choose_input_size(config, checkpoint, train_set, val_set, dist_info,
                                                            final_eval, device)
    if dist_info.is_main:
        warn_about_schedule(config)
    header_notes = [choice.summary] if choice.summary else []
    precision_note = cpu_precision_note(config.train.amp, resolve_amp(config.train.amp, device), device)
    if precision_note is not None:  # on the console and in train.log
        header_notes.append(precision_note)
        if dist_info.is_main:
            logger.info(precision_note)
    hooks = _make_hooks(config, run_dir, train_set, val_set, device, dist_info, final_eval, spent_s=choice.seconds,
                        header_notes=header_notes)
    for hook in hooks if checkpoint is not None else ():
        hook.load_state_dict(checkpoint.get("hooks", {}).get(type(hook).__name__, {}))
    trainer = _make_trainer(config, checkpoint, device, dist_info, train_set, hooks)
    created = checkpoint is None and run_dir is not None and not run_dir.exists()
    if checkpoint is None and run_dir is not None:  # every input is valid: now the folder is made
        create_run_folder(run_dir, dump_config(config), exact=run_name is not None)
        logger.info(f"run folder: {run_dir}")
    state = _run_trainer(trainer, run_dir, created)
    if state.stop_reason is not None:
        logger.info(f"stopped by {state.stop_reason} at iteration {state.iteration}; checkpoint saved in "
                    f"{run_dir}/weights; continue with: python train.py --config {config_name} --resume {run_dir}")
        return 0
    logger.info(f"training finished at iteration {state.iteration}; weights in {run_dir}/weights")
    if final_eval and state.validation is not None and dist_info.is_main:
        _report_final_evaluation(state.validation, run_dir)
    return 0


def _prepare_datasets(config: Config, dist_info, final_eval: bool, device: torch.device):
    """-> (config with num_classes resolved, train set, val set or None)."""
    prepare_data(config, dist_info.is_main)
    workers = build_num_workers(config, device.type, world_size=dist_info.world_size)
    train_set = build_dataset(config, "train", loader_processes=max(1, workers))
    config = with_num_classes(config, config.model.num_classes or len(train_set.class_names))
    if len(train_set.class_names) != config.model.num_classes:
        raise YolactError(f"{config.data.train_annotations}: {len(train_set.class_names)} categories but "
                          f"model.num_classes is {config.model.num_classes}")
    wants_val = config.train.val_interval or final_eval  # every rank evaluates its shard
    return config, train_set, build_dataset(config, "val") if wants_val else None


def _choose_input_size(config: Config, checkpoint, train_set, val_set, dist_info, final_eval: bool, device):
    """-> (config, train set, val set, :class:`InputSizeChoice`): a new run with
    ``train.time_input_sizes`` takes the size its objects need and the machine's speed affords (the
    datasets are built again at it); a resumed run keeps its checkpoint's size."""
    if checkpoint is not None:
        return config, train_set, val_set, InputSizeChoice(config, 0.0, "")
    choice = choose_time_input_size(config, records=train_set.records, device=device,
                                    world_size=dist_info.world_size)
    if choice.summary:
        seed_everything(config.train.seed + dist_info.rank)  # the timed models drew from the RNG
    if choice.config.model.input_size == config.model.input_size:
        return choice.config, train_set, val_set, choice
    return (*_prepare_datasets(choice.config, dist_info, final_eval, device), choice)


def _make_hooks(config: Config, run_dir, train_set, val_set, device, dist_info, final_eval: bool, *,
                spent_s: float = 0.0, header_notes=()) -> list:
    """In call order: time budget and weight average (when on), periodic and last checkpoints,
    validation, best checkpoint, monitor. ``spent_s``: seconds of the time budget already spent;
    ``header_notes``: lines for the top of train.log.

    Every rank has the same hooks at the same moments (checkpoints gather each rank's RNG state,
    validation gathers each rank's shard); rank 0 alone writes and draws.
    """
    train_cfg, is_main = config.train, dist_info.is_main
    ema = build_ema_hook(config)
    checkpointer = Checkpointer(run_dir, config=config, class_names=train_set.class_names,
                                category_ids=train_set.category_ids, save_interval=train_cfg.save_interval,
                                enabled=is_main, keep_checkpoints=train_cfg.keep_checkpoints)
    hooks = [checkpointer]
    if val_set is not None:
        postprocessor = build_postprocessor(config)
        hooks.append(ValidationHook(
            interval=train_cfg.val_interval, final=final_eval,
            model_source=ema.averaged_model if ema is not None else None,
            evaluate=make_evaluate_fn(postprocessor, build_val_loader(config, val_set, rank=dist_info.rank,
                                                                      world_size=dist_info.world_size,
                                                                      pin_memory=device.type == "cuda",
                                                                      device_type=device.type),
                                      val_set, device, train_cfg.val_max_images, gather=dist_info.distributed),
            visualize=make_visualize_fn(postprocessor, val_set, device, train_cfg.val_visualize if is_main else 0)))
        hooks.append(BestCheckpointer(checkpointer))
    hooks.append(TrainMonitor(run_dir, log_interval=train_cfg.log_interval, enabled=is_main, plots=train_cfg.plots,
                              labels_dataset=train_set, header_notes=header_notes))
    val_images = min(len(val_set), train_cfg.val_max_images or len(val_set)) if val_set is not None else 0
    # the same final_eval on every rank (rank 0 evaluates; the plans must agree)
    budget = build_time_budget_hook(config, val_images=val_images, final_eval=final_eval, spent_s=spent_s)
    return [hook for hook in (budget, ema) if hook is not None] + hooks


def _make_trainer(config: Config, checkpoint, device, dist_info, train_set, hooks) -> Trainer:
    """Model, loss, optimizer, scaler and batches, restored from ``checkpoint`` when resuming."""
    train_cfg = config.train
    batch_per_rank = train_cfg.batch_size // dist_info.world_size
    model = build_model_local_rank_first(config, None if checkpoint is not None else "config", dist_info)
    if checkpoint is None and config.model.init_weights:
        _initialise_from(model, Path(config.model.init_weights))
    model.set_bn_frozen(batch_per_rank < train_cfg.freeze_bn_below)
    model.to(device)
    amp = resolve_amp(train_cfg.amp, device)
    log_performance_advice(device, amp=amp)
    channels_last = set_training_memory_format(model, train_cfg.channels_last, device, amp)
    optimizer = build_optimizer(config, model)
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    state = TrainState()
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scaler is not None and checkpoint.get("scaler"):
            scaler.load_state_dict(checkpoint["scaler"])
        state = TrainState(iteration=int(checkpoint["iteration"]),
                           best_mask_ap=float(checkpoint.get("best_mask_ap", -1.0)))
        for note in restore_rng_state(checkpoint.get("rng"), device, rank=dist_info.rank,
                                      world_size=dist_info.world_size):
            logger.info(f"resume: {note}")
    train_model = model
    if dist_info.distributed:
        # frozen BatchNorm has no buffers to keep in sync: skip the broadcast before every forward
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            broadcast_buffers=not model.bn_frozen)
    if config.data.num_workers == "auto" and dist_info.is_main:
        workers = build_num_workers(config, device.type, world_size=dist_info.world_size)
        logger.info(f"data.num_workers auto: {workers} worker processes on {device.type}"
                    + (" (the loading runs in the training process, between steps)" if workers == 0 else ""))
    def batches_from(start_iteration: int):
        return iter(build_train_loader(config, train_set, batch_per_rank=batch_per_rank,
                                       start_iteration=start_iteration, rank=dist_info.rank,
                                       world_size=dist_info.world_size, pin_memory=device.type == "cuda",
                                       device_type=device.type))

    close_fraction = config.data.augment.close_mosaic_fraction
    if close_fraction > 0 and train_set.mixer is not None:
        # after the time budget, so that it reads this step's plan, and never before there is one
        budget = next((hook for hook in hooks if isinstance(hook, TimeBudgetHook)), None)
        close = CloseMosaicHook(close_fraction, train_set, batches_from,
                                planned=lambda: budget is None or budget.plan is not None)
        hooks = list(hooks)
        hooks.insert(hooks.index(budget) + 1 if budget is not None else 0, close)
    lr_at, max_iter = build_lr_schedule(config)
    return Trainer(model=train_model, criterion=build_criterion(config).to(device), optimizer=optimizer,
                   batches=batches_from(state.iteration), device=device, lr_at=lr_at, max_iter=max_iter, amp=amp,
                   scaler=scaler, grad_clip=train_cfg.grad_clip, max_nonfinite=train_cfg.max_nonfinite,
                   check_gradients=checks_gradients(device, amp), channels_last=channels_last,
                   log_interval=train_cfg.log_interval, hooks=hooks, state=state)


def build_model_local_rank_first(config: Config, pretrained: Optional[str], dist_info):
    """``build_model`` with local rank 0 first: it alone downloads the ImageNet backbone into
    torch's cache, the other ranks wait (one barrier each) and then read the cache."""
    if dist_info.local_rank != 0:
        barrier()
    model = build_model(config, pretrained=pretrained)
    if dist_info.local_rank == 0:
        barrier()
    return model


def _run_trainer(trainer: Trainer, run_dir: Optional[Path], created: bool) -> TrainState:
    """``trainer.train()``; a failed new run without any checkpoint leaves no folder behind, and a
    failed write (full disk) names the last good checkpoint."""
    try:
        return _train_naming_full_disk(trainer, run_dir)
    except YolactError as error:
        for hook in trainer.hooks:  # a failed final save skipped the monitor's own close (bar, train.log)
            if isinstance(hook, TrainMonitor):
                with contextlib.suppress(OSError):  # on a full disk its last metrics.csv rewrite fails too
                    hook.close()
        if created and not any((run_dir / "weights").glob("*.pth")):
            remove_folder(run_dir)
        if isinstance(error, OutputWriteError):
            raise YolactError(f"{error}; training stopped, {last_checkpoint_note(run_dir)}") from None
        raise


def _train_naming_full_disk(trainer: Trainer, run_dir: Optional[Path]) -> TrainState:
    """``trainer.train()``; a full disk met outside the atomic writes (metrics.csv, events) becomes
    the same one-line OutputWriteError, naming the run folder."""
    try:
        return trainer.train()
    except OSError as error:
        if isinstance(error, YolactError) or run_dir is None or not is_disk_full(error):
            raise
        raise write_error(run_dir, error) from None


def _initialise_from(model: torch.nn.Module, path: Path) -> None:
    """Fine-tuning start: load a checkpoint's model weights, class layers may differ."""
    from yolact.modeling.reference_weights import load_model_weights

    try:
        reinitialised = load_model_weights(model, load_checkpoint(path)["model"])
    except YolactError as error:
        message = str(error)
        raise YolactError(message if message.startswith(str(path)) else f"{path}: {message}") from None
    logger.info(f"initialised from {path}" + (f" ({len(reinitialised)} class-dependent tensors re-initialised)"
                                              if reinitialised else ""))


def _plan_run_dir(config, config_name, run_name, checkpoint, is_main) -> Optional[Path]:
    """The run folder (created later, once the inputs are valid); its writability checked now."""
    if not is_main:
        return None
    if checkpoint is not None:
        check_writable_folder(Path(checkpoint["path"]).parent)
        return Path(checkpoint["path"]).parent.parent
    return plan_run_folder(Path(config.train.output_dir), run_name or Path(config_name).stem,
                           exact=run_name is not None)


def _report_final_evaluation(result, run_dir: Path) -> None:
    print(result.summary)
    atomic_write(run_dir / "eval_summary.txt", lambda handle: handle.write(result.summary), binary=False)
    final = {"iteration": result.iteration, **result.metrics}
    atomic_write(run_dir / "final_metrics.json", lambda handle: handle.write(json.dumps(final)), binary=False)
    logger.info(f"final mask AP {result.metrics.get('segm/AP', float('nan')):.4f}, box AP "
                f"{result.metrics.get('bbox/AP', float('nan')):.4f}; summary in {run_dir / 'eval_summary.txt'}")
