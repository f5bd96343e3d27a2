"""Model + config + class names from a checkpoint: ours or a reference (bare state_dict) one."""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import torch

from yolact.build import build_model, with_num_classes
from yolact.config import Config, apply_overrides, config_from_dict, load_config
from yolact.data.class_names import resolve_class_names
from yolact.engine.checkpoint import load_checkpoint
from yolact.errors import YolactError

__all__ = ["LoadedModel", "load_model_for_inference", "num_classes_in_state"]

logger = logging.getLogger("yolact")


@dataclass
class LoadedModel:
    model: torch.nn.Module          # in eval mode, on the requested device
    config: Config                  # with model.num_classes resolved
    class_names: List[str]          # label i -> name
    category_ids: Optional[List[int]]  # label i -> json category id (None: unknown)
    checkpoint_path: Path


def num_classes_in_state(state: dict) -> Optional[int]:
    """Foreground classes implied by a state_dict's class layer (ours or the reference's)."""
    from yolact.modeling.reference_weights import is_reference_state_dict, to_reference_state_dict

    reference = state if is_reference_state_dict(state) else to_reference_state_dict(state)
    weight = reference.get("prediction_layers.0.conf_layer.weight")
    anchors_per_cell = reference.get("prediction_layers.0.bbox_layer.weight")
    if weight is None or anchors_per_cell is None:
        return None
    return weight.shape[0] // (anchors_per_cell.shape[0] // 4) - 1


def load_model_for_inference(weights: Path, *, config_name: Optional[str], overrides: Sequence[str] = (),
                             device: torch.device,
                             fallback_class_names: Optional[Sequence[str]] = None) -> LoadedModel:
    """Build the model a checkpoint was trained as and load its weights.

    Our checkpoints carry their config and class names; ``config_name`` overrides the config.
    A checkpoint trained with ``train.ema_decay`` loads its weight average, not the raw weights.
    A reference checkpoint (bare state_dict) needs ``config_name`` (default ``coco``); its
    class count is read from its class layer.
    """
    from yolact.engine.inference_weights import inference_state_dict
    from yolact.modeling.reference_weights import load_model_weights

    checkpoint = load_checkpoint(weights)
    state = inference_state_dict(checkpoint)  # the weight average when training kept one
    if config_name is not None:
        config = load_config(config_name, overrides)
    elif "config" in checkpoint and overrides:  # the checkpoint's own config is the base of the overrides
        config = apply_overrides(checkpoint["config"], overrides, source=str(weights))
    elif "config" in checkpoint:
        config = config_from_dict(checkpoint["config"], default_source=str(weights))
    else:
        config = load_config("coco", overrides)
    num_classes = num_classes_in_state(state) or config.model.num_classes
    if num_classes is None:
        raise YolactError(f"{weights}: no class layer found; not a YOLACT checkpoint")
    config = with_num_classes(config, num_classes)
    model = build_model(config, pretrained=None)
    try:
        load_model_weights(model, state)
    except YolactError as error:
        raise YolactError(f"{weights}: does not fit the config's model ({error})") from None
    class_names, category_ids, source = resolve_class_names(
        num_classes, stored_names=checkpoint.get("class_names") or fallback_class_names,
        stored_ids=checkpoint.get("category_ids"),
        annotation_files=(config.data.val_annotations, config.data.train_annotations))
    if source not in ("checkpoint", "none"):
        logger.info(f"{weights}: no class names stored; using those of {source}")
    model.to(device).eval()
    return LoadedModel(model=model, config=config, class_names=class_names,
                       category_ids=category_ids, checkpoint_path=Path(weights))
