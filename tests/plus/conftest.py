"""Shared fixtures of the YOLACT++ tests: ../shared/fixtures/reference_plus (the reference's
outputs for yolact_plus_tiny; its README gives every key and the tolerances used here)."""
import importlib.util
import os
from pathlib import Path

import pytest
import torch

from tests.plus.plus_tiny import make_plus_tiny_yolact
from yolact.modeling.reference_weights import load_model_weights

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUS_DIR = Path(os.environ.get("YOLACT_REFERENCE_PLUS_FIXTURES",
                               REPO_ROOT.parent / "shared" / "fixtures" / "reference_plus"))


@pytest.fixture(scope="session")
def plus_loader():
    """The fixture's own loader module (load_plus.py beside the dump), skipping without it."""
    if not (PLUS_DIR / "yolact_plus_tiny_dump.pth").is_file():
        pytest.skip(f"YOLACT++ reference fixture not found in {PLUS_DIR} "
                    f"(set YOLACT_REFERENCE_PLUS_FIXTURES)")
    spec = importlib.util.spec_from_file_location("load_plus", PLUS_DIR / "load_plus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def plus_dump(plus_loader):
    return plus_loader.load_dump(PLUS_DIR)


@pytest.fixture(scope="session")
def plus_state(plus_loader, plus_dump):
    """The recipe weights (157 tensors, reference names), sha256-checked by the loader."""
    return plus_loader.load_state(plus_dump, PLUS_DIR)


@pytest.fixture(scope="session")
def plus_targets(plus_dump):
    """The reference's packed targets (crowd rows last, label -1) -> our per-image dicts."""
    targets = []
    reference_input = plus_dump["input"]
    for packed, masks, num_crowds in zip(reference_input["targets"], reference_input["masks"],
                                         reference_input["num_crowds"].tolist()):
        num_objects = packed.shape[0] - num_crowds
        targets.append({"boxes": packed[:num_objects, :4], "labels": packed[:num_objects, 4].long(),
                        "masks": masks[:num_objects], "crowd_boxes": packed[num_objects:, :4]})
    return targets


@pytest.fixture
def plus_model(plus_state):
    """A fresh yolact_plus_tiny holding the fixture's weights, BatchNorm frozen, train mode."""
    torch.manual_seed(0)
    model = make_plus_tiny_yolact()
    assert load_model_weights(model, plus_state) == []
    return model.train().set_bn_frozen(True)
