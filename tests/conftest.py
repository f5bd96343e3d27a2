"""Shared test fixtures: the reference outputs in ../shared/fixtures/reference."""
import logging
import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = Path(
    os.environ.get("YOLACT_REFERENCE_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures" / "reference")
)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """Folder of the reference implementation's fixtures (skips when it is absent)."""
    if not (REFERENCE_DIR / "yolact_tiny_state.pth").is_file():
        pytest.skip(f"reference fixtures not found in {REFERENCE_DIR}")
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def reference_dump(reference_dir):
    """Inputs and outputs of the reference on yolact_tiny (see the fixture README)."""
    return torch.load(reference_dir / "yolact_tiny_dump.pth", weights_only=True)


@pytest.fixture(scope="session")
def reference_state(reference_dir):
    """The reference's yolact_tiny state_dict (138 tensors, reference key names)."""
    return torch.load(reference_dir / "yolact_tiny_state.pth", weights_only=True)


@pytest.fixture
def yolact_log(caplog):
    """caplog that sees the "yolact" logger even when an entry point turned its propagation off;
    the logger's handlers and level are restored afterwards."""
    logger = logging.getLogger("yolact")
    saved_handlers, saved_level = list(logger.handlers), logger.level
    logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    logger.setLevel(logging.INFO)
    yield caplog
    logger.handlers[:] = saved_handlers
    logger.setLevel(saved_level)
