"""Fixtures of the data tests: small COCO folders in tmp_path."""
import logging

import pytest
from coco_builders import build_coco_folder


@pytest.fixture
def coco_folder(tmp_path):
    """-> build(images, annotations, categories, files=None, json_text=None) -> (image_dir, json_path)."""
    def build(images, annotations, categories, files=None, json_text=None):
        return build_coco_folder(tmp_path, images, annotations, categories, files=files, json_text=json_text)

    return build


@pytest.fixture
def yolact_log(caplog):
    """caplog that sees the "yolact" logger even when an entry point turned its propagation off;
    the logger's handlers, level and propagation are restored afterwards."""
    logger = logging.getLogger("yolact")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    logger.setLevel(logging.WARNING)
    yield caplog
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]
