"""data.cache: each image and its masks are decoded once, and the samples are the same as without it."""
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.data.coco_builders import build_coco_folder, rect_rle
from yolact.data import coco as coco_module
from yolact.data.coco import CocoInstanceDataset, SampleKey
from yolact.data.mixing import SampleMixer
from yolact.data.ram_cache import DecodedCache, decoded_size_bytes
from yolact.data.transforms import TrainTransform

SIZES = {1: (40, 50), 2: (30, 30), 3: (36, 44)}


def _folder(tmp_path):
    images = [(i, f"{i}.png", h, w) for i, (h, w) in SIZES.items()]
    annotations = [{"id": 10 * i + j, "image_id": i, "category_id": 7, "iscrowd": 0,
                    "bbox": [2 + 3 * j, 4, 12, 10], "area": 120.0,
                    "segmentation": rect_rle(*SIZES[i], 2 + 3 * j, 4, 14 + 3 * j, 14, compressed=bool(j))}
                   for i in SIZES for j in range(2)]
    return build_coco_folder(tmp_path, images, annotations, [{"id": 7, "name": "box"}])


def _dataset(image_dir, json_path, cache):
    return CocoInstanceDataset(image_dir, json_path, cache=cache,
                               transform=TrainTransform(input_size=32, expand=False, random_crop=False),
                               mixer=SampleMixer(mosaic_prob=0.5, copy_paste_prob=0.0, mosaic_size=32))


def test_cached_samples_equal_uncached_and_decode_once(tmp_path, monkeypatch):
    image_dir, json_path = _folder(tmp_path)
    plain, cached = _dataset(image_dir, json_path, False), _dataset(image_dir, json_path, True)
    decoded = []
    original = coco_module.read_image_file
    monkeypatch.setattr(coco_module, "read_image_file", lambda path, flags: decoded.append(path) or original(path, flags))
    keys = [SampleKey(index, epoch, 5) for epoch in range(4) for index in range(3)]
    plain_samples = [plain[key] for key in keys]
    reads_without_cache = len(decoded)
    decoded.clear()
    for key, (image, target) in zip(keys, plain_samples):
        cached_image, cached_target = cached[key]
        assert torch.equal(cached_image, image)
        for name in ("boxes", "labels", "masks", "crowd_boxes"):
            assert torch.equal(cached_target[name], target[name]), name
    assert reads_without_cache > 12  # one per sample and more for the mosaics' partners
    assert sorted(Path(p).name for p in decoded) == ["1.png", "2.png", "3.png"]
    assert len(cached._cache) == 6  # an image and its instances each


def test_copies_leave_the_cache_intact():
    cache = DecodedCache()
    first = cache.get("k", lambda: {"masks": np.ones((1, 2, 2), np.uint8)})
    first["masks"][:] = 0
    assert cache.get("k", lambda: pytest.fail("decoded again"))["masks"].sum() == 4


def test_undecodable_result_is_not_kept():
    cache = DecodedCache()
    assert cache.get("k", lambda: None) is None and len(cache) == 0


def test_too_large_for_memory_is_not_cached_with_a_warning(caplog):
    size = decoded_size_bytes([(100, 200, 2), (50, 50, 0)])
    assert size == 100 * 200 * 5 + 50 * 50 * 3
    with caplog.at_level(logging.WARNING, logger="yolact"):
        assert DecodedCache.if_it_fits("train.json", size, available_bytes=2 * size - 1) is None
    assert "train.json: data.cache is on" in caplog.text and "not cached" in caplog.text
    assert DecodedCache.if_it_fits("train.json", size, available_bytes=2 * size) is not None
    assert DecodedCache.if_it_fits("train.json", size, available_bytes=None) is not None


def test_each_loader_process_counts_against_the_memory(caplog):
    with caplog.at_level(logging.WARNING, logger="yolact"):
        assert DecodedCache.if_it_fits("train.json", 100, available_bytes=799, copies=4) is None
    assert "100 GiB" not in caplog.text and "in each of 4 loader processes" in caplog.text
    assert DecodedCache.if_it_fits("train.json", 100, available_bytes=800, copies=4) is not None
