"""Any COCO-format instances json with its image folder, as a torch Dataset."""
import contextlib
import io
import logging
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple, Union

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from yolact.data.ram_cache import DecodedCache, available_memory_bytes, decoded_size_bytes
from yolact.data.validation import ImageRecord, load_annotation_json, validate_coco
from yolact.errors import YolactError
from yolact.utils.image_io import read_image as read_image_file

__all__ = ["SampleKey", "CocoInstanceDataset", "decode_masks"]

logger = logging.getLogger("yolact")

# Problems logged one by one before the rest go to the summary line (all are in `problems`).
MAX_LOGGED_PROBLEMS = 20


class SampleKey(NamedTuple):
    """What the loader's sampler hands to ``dataset[...]``: the image and its random draw.

    The augmentation generator of a sample is seeded with (seed, epoch, index), so a run is
    reproducible whatever the number of workers or processes, and after a resume.
    """

    index: int
    epoch: int = 0
    seed: int = 0


def _to_rle(segmentation, height: int, width: int):
    if isinstance(segmentation, list):  # polygons: one RLE per part, merged
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation["counts"], list):  # uncompressed RLE
        return mask_utils.frPyObjects(segmentation, height, width)
    return segmentation  # compressed RLE


def decode_masks(segmentations: List, height: int, width: int) -> np.ndarray:
    """Polygons / uncompressed RLE / compressed RLE -> (n, H, W) uint8 0/1 masks."""
    if not segmentations:
        return np.zeros((0, height, width), np.uint8)
    rles = [_to_rle(segmentation, height, width) for segmentation in segmentations]
    # decode returns (H, W, n) in Fortran order, so its (n, H, W) transpose is C-contiguous.
    return mask_utils.decode(rles).transpose(2, 0, 1)


def _coco_from_dict(ground_truth: Dict) -> COCO:
    coco = COCO()
    coco.dataset = ground_truth
    with contextlib.redirect_stdout(io.StringIO()):  # createIndex prints progress lines
        coco.createIndex()
    return coco


class CocoInstanceDataset(torch.utils.data.Dataset):
    """Images and instance targets of a COCO json, validated up front (see ``validation.py``).

    Args:
        image_dir: folder of the images named by the json's ``file_name``.
        annotation_file: the COCO instances json (polygons, uncompressed or compressed RLE).
        transform: ``TrainTransform`` / ``EvalTransform`` or any callable
            ``(image_bgr, instances, rng) -> (image, target)`` (see ``transforms.py``).
        keep_empty: keep images without a non-crowd object as background-only images.
        seed: seed of the random draws of ``dataset[i]`` with a plain int (the loader passes
            a :class:`SampleKey` with its own seed instead).
        max_load_tries: how many images are tried when images cannot be decoded.
        mixer: called as ``mixer(image_bgr, instances, rng, draw)`` before the transform, with
            ``draw(rng) -> (image_bgr, instances)`` reading a random image of the dataset
            (e.g. :class:`~yolact.data.mixing.SampleMixer`: mosaic, copy-paste); None: off.
        cache: keep each image and its masks decoded in memory after the first use (see
            :mod:`yolact.data.ram_cache`; off when they would take over half the free memory).
        cache_copies: the processes that will each hold a cache (the loader's workers).

    Attributes:
        class_names: contiguous label i -> category name (categories sorted by id).
        category_ids: contiguous label i -> json category id.
        coco: pycocotools COCO of the ground truth as loaded, minus the annotations dropped
            by validation (and with degenerate polygons removed), for COCOeval.
        image_ids: ids of the images used, in json order.
        problems: one line per problem found by validation.

    ``dataset[i]`` -> (image FloatTensor [3, S, S] normalised RGB, target dict) with target
    ``boxes`` float32 (n, 4) xyxy relative to the input, ``labels`` int64 (n,) 0-based,
    ``masks`` uint8 (n, S, S), ``crowd_boxes`` float32 (m, 4) xyxy relative, ``image_id``
    int and ``orig_size`` (h, w) ints of the original image. An image that cannot be decoded
    is logged (file name and image id) and replaced by another one.
    """

    def __init__(self, image_dir, annotation_file, *, transform: Callable, keep_empty: bool = False,
                 seed: int = 0, max_load_tries: int = 20, mixer: Optional[Callable] = None, cache: bool = False,
                 cache_copies: int = 1):
        self.image_dir, self.annotation_file = Path(image_dir), Path(annotation_file)
        self.transform, self.seed, self.max_load_tries = transform, seed, max_load_tries
        self.mixer = mixer
        report = validate_coco(load_annotation_json(self.annotation_file), image_dir=self.image_dir,
                               annotation_file=self.annotation_file, keep_empty=keep_empty)
        self.class_names: List[str] = report.class_names
        self.category_ids: List[int] = report.category_ids
        self.coco: COCO = _coco_from_dict(report.ground_truth)
        self.records: List[ImageRecord] = report.images
        self.image_ids: List[int] = [record.image_id for record in report.images]
        self.problems: List[str] = report.problems
        self._undecodable: set = set()
        self._log_summary(report)
        self._cache: Optional[DecodedCache] = None
        if cache:
            sizes = [(record.height, record.width, record.num_instances) for record in self.records]
            self._cache = DecodedCache.if_it_fits(self.annotation_file.name, decoded_size_bytes(sizes),
                                                  available_memory_bytes(), copies=cache_copies)

    def _image(self, index: int):
        """:meth:`read_image` of image ``index``, from the cache when it is on."""
        record = self.records[index]
        if self._cache is None:
            return self.read_image(record)
        return self._cache.get(("image", index), lambda: self.read_image(record))

    def _instances(self, index: int) -> Dict[str, np.ndarray]:
        """:meth:`load_instances` of image ``index``, from the cache when it is on."""
        record = self.records[index]
        if self._cache is None:
            return self.load_instances(record)
        return self._cache.get(("instances", index), lambda: self.load_instances(record))

    def _log_summary(self, report) -> None:
        for problem in report.problems[:MAX_LOGGED_PROBLEMS]:
            logger.warning(problem)
        name = self.annotation_file.name
        if len(report.problems) > MAX_LOGGED_PROBLEMS:
            logger.warning("%s: %d more problems (see dataset.problems)", name,
                           len(report.problems) - MAX_LOGGED_PROBLEMS)
        if report.problems:
            logger.warning("%s: %d problems, %d annotations dropped", name, len(report.problems),
                           report.num_dropped_annotations)
        num_objects = sum(record.num_instances for record in self.records)
        logger.info("%s: %d images, %d classes, %d objects", name, len(self.records), len(self.class_names),
                    num_objects)

    def __len__(self) -> int:
        return len(self.records)

    def load_instances(self, record: ImageRecord) -> Dict[str, np.ndarray]:
        """Instances of one image in original pixels (see ``transforms.py`` for the keys)."""
        objects = [obj for obj in record.objects if not obj.is_crowd]
        masks = decode_masks([obj.segmentation for obj in objects], record.height, record.width)
        boxes = np.array([obj.box_xyxy for obj in objects], np.float32).reshape(-1, 4)
        labels = np.array([obj.label for obj in objects], np.int64)
        # A mask without a pixel has no box to learn: such objects are left out.
        non_empty = masks.reshape(len(masks), record.height * record.width).any(axis=1)
        crowd_boxes = np.array([obj.box_xyxy for obj in record.objects if obj.is_crowd], np.float32)
        return {"masks": masks[non_empty] if not non_empty.all() else masks, "boxes": boxes[non_empty],
                "labels": labels[non_empty], "crowd_boxes": crowd_boxes.reshape(-1, 4)}

    def read_image(self, record: ImageRecord):
        """(H, W, 3) uint8 BGR, or None when the file cannot be decoded or has the wrong size."""
        # EXIF orientation is ignored: the annotations refer to the stored pixel grid.
        # Decoded from bytes: no OpenCV or libjpeg message before ours.
        image = read_image_file(record.path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is None:
            reason = "cannot be decoded"
        elif image.shape[:2] != (record.height, record.width):
            reason = f"is {image.shape[1]}x{image.shape[0]}, the json says {record.width}x{record.height}"
        else:
            return image
        logger.warning("%s (image %d): %s, skipped (another image is used)", record.path, record.image_id,
                       reason)
        return None

    def _load_any(self, key: SampleKey, rng: np.random.Generator) -> Tuple[int, np.ndarray]:
        """-> (index, image) of the requested image or, when it is undecodable, another one."""
        index = key.index
        for _ in range(self.max_load_tries):
            if index not in self._undecodable:
                image = self._image(index)
                if image is not None:
                    return index, image
                self._undecodable.add(index)
            index = int(rng.integers(len(self.records)))
        raise YolactError(f"{self.annotation_file}: none of {self.max_load_tries} images tried could be "
                          f"decoded (images in {self.image_dir})")

    def draw_random(self, rng: np.random.Generator) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        """(image (H, W, 3) uint8 BGR, instances) of an image drawn uniformly with ``rng``."""
        index, image = self._load_any(SampleKey(int(rng.integers(len(self.records)))), rng)
        return image, self._instances(index)

    def __getitem__(self, key: Union[int, SampleKey]):
        if not isinstance(key, SampleKey):
            key = SampleKey(int(key), 0, self.seed)
        if not 0 <= key.index < len(self.records):
            raise IndexError(f"index {key.index} out of range for {len(self.records)} images")
        # One generator per sample: the same key gives the same image and the same draws.
        rng = np.random.default_rng([key.seed & 0xFFFFFFFF, key.epoch, key.index])
        index, image_bgr = self._load_any(key, rng)
        record = self.records[index]
        instances = self._instances(index)
        if self.mixer is not None:
            image_bgr, instances = self.mixer(image_bgr, instances, rng, self.draw_random)
        image, target = self.transform(image_bgr, instances, rng)
        target["image_id"] = record.image_id
        target["orig_size"] = (record.height, record.width)
        return image, target
