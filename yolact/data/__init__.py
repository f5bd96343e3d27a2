"""Data pipeline: COCO-format datasets, validation, augmentation, batching, synthetic shapes.

Flow: ``CocoInstanceDataset`` (validated json + image folder) -> ``TrainTransform`` /
``EvalTransform`` (image and instances -> network input and target) -> ``make_train_loader`` /
``make_val_loader`` (resumable seeded sampler, workers, ``collate_detections``).

Small-data augmentation, off by default: ``SampleMixer`` (``mixing.py``: ``mosaic.py``,
``copy_paste.py``) mixes images before the transform; ``scale_jitter.py`` replaces the final
resize. Synthetic sets: ``shapes.py`` (the quick start) and ``hard_shapes.py`` (styles a/b/c).
"""
from yolact.data.coco import CocoInstanceDataset, SampleKey, decode_masks
from yolact.data.collate import collate_detections
from yolact.data.loader import make_train_loader, make_val_loader, seed_worker
from yolact.data.sampler import ResumableBatchSampler
from yolact.data.transforms import (PIXEL_MEAN_BGR, PIXEL_STD_BGR, EvalTransform, TrainTransform,
                                    eval_transform, normalize_to_tensor)

__all__ = [
    "CocoInstanceDataset", "SampleKey", "decode_masks", "collate_detections", "ResumableBatchSampler",
    "make_train_loader", "make_val_loader", "seed_worker", "SHAPES_CLASS_NAMES", "ShapesPaths", "make_shapes_dataset",
    "PIXEL_MEAN_BGR", "PIXEL_STD_BGR", "EvalTransform", "TrainTransform", "eval_transform",
    "normalize_to_tensor",
]

_SHAPES_NAMES = {"SHAPES_CLASS_NAMES": "CLASS_NAMES", "ShapesPaths": "ShapesPaths",
                 "make_shapes_dataset": "make_shapes_dataset"}


def __getattr__(name):
    # Imported on first use so that `python -m yolact.data.shapes` does not find the module
    # already imported by its package (runpy's double-import warning).
    if name in _SHAPES_NAMES:
        from yolact.data import shapes
        return getattr(shapes, _SHAPES_NAMES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
