"""Fixtures of the data tests: small COCO folders in tmp_path."""

import pytest
from coco_builders import build_coco_folder


@pytest.fixture
def coco_folder(tmp_path):
    """-> build(images, annotations, categories, files=None, json_text=None) -> (image_dir, json_path)."""
    def build(images, annotations, categories, files=None, json_text=None):
        return build_coco_folder(tmp_path, images, annotations, categories, files=files, json_text=json_text)

    return build

