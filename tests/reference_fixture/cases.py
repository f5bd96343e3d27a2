"""The reference implementation's outputs on yolact_tiny, as one object per fixture.

Two fixtures describe the same model and the same two pictures:
- ``compact`` (192 px, in the repository under tests/fixtures/reference): weights rebuilt from a
  seeded recipe (``weights.py``), one state for every section; always present.
- ``full550`` (550 px, ../shared/fixtures/reference, 110 MB): a stored state_dict, plus a
  "sharp" head delta for the eval sections; an extra check where it is present (CI has it).

``ReferenceCase`` hides their differences (sizes, counts, which state, what is stored) so that
each fidelity test is written once and runs on both.
"""
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from tests.reference_fixture.weights import make_reference_state, state_sha256

__all__ = ["ReferenceCase", "COMPACT_DIR", "FULL_DIR", "REFERENCE_CASE_NAMES", "fixture_missing", "load_case",
           "load_compact", "load_full", "read_state_keys", "unpack_masks"]

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPACT_DIR = REPO_ROOT / "tests" / "fixtures" / "reference"
FULL_DIR = Path(os.environ.get("YOLACT_REFERENCE_FIXTURES",
                               REPO_ROOT.parent / "shared" / "fixtures" / "reference"))
REFERENCE_CASE_NAMES = ("compact", "full550")


@dataclass
class ReferenceCase:
    """One fixture: its dump, weights and the constants the tests compare with.

    ``post_sizes`` maps a key of ``dump["eval_sharp"]`` to the (height, width) it was pasted at.
    ``fastnms`` holds Fast NMS on one image with ``candidates.{boxes, scores [80, n], masks}``.
    """
    name: str
    folder: Path
    dump: dict
    train_state: Dict[str, torch.Tensor]   # reference key names; the train* sections
    eval_state: Dict[str, torch.Tensor]    # the eval_sharp section
    input_size: int
    anchor_scales: Tuple[int, ...]
    num_anchors: int
    post_sizes: Dict[str, Tuple[int, int]]
    num_positives: List[int]
    num_grads: int
    max_candidates_per_class: int
    fastnms: dict = field(repr=False, default_factory=dict)

    @property
    def eval_raw(self) -> dict:
        """What the reference's detector received: loc, conf (softmax), mask, proto, priors."""
        return self.dump["eval_sharp"]["raw"]


def _sha256(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.contiguous().reshape(-1).numpy().tobytes()).hexdigest()


def read_state_keys(path: Path) -> List[Tuple[str, List[int], str]]:
    """state_keys.txt -> [(name, shape, dtype)]; lines "name dtype 64x3x7x7" ("scalar": [])."""
    keys = []
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, dtype, shape = line.split()
        dims = [] if shape in ("scalar", "-", "[]") else [int(d) for d in shape.split("x")]
        keys.append((name, dims, dtype))
    return keys


def _compact_fastnms(dump: dict, folder: Path) -> dict:
    """fastnms.pth with its unstored input and candidates rebuilt from the dump (README)."""
    fastnms = torch.load(folder / "fastnms.pth", weights_only=True)
    preds = dump["train"]["preds"]
    # a float64 softmax rounded once: the same bits on every CPU
    conf = torch.softmax(preds["conf"][0:1].double(), dim=-1).float()          # [1, A, 81]
    fastnms["input"] = {"loc": preds["loc"][0:1], "conf": conf, "mask": preds["mask"][0:1],
                        "priors": preds["priors"]}
    prior_idx = fastnms["candidates"]["prior_idx"]
    fastnms["candidates"].update({
        "boxes": fastnms["decoded_boxes"][prior_idx],                            # [n, 4]
        "scores": conf[0].t().contiguous()[1:, prior_idx],                       # [80, n]
        "masks": preds["mask"][0, prior_idx],                                    # [n, 32]
    })
    fastnms["input_conf_bit_identical"] = _sha256(conf) == fastnms["meta"]["input_conf_sha256"]
    return fastnms


def load_compact(folder: Path = COMPACT_DIR) -> ReferenceCase:
    """The 192-px fixture; its weights are rebuilt and checked against the recorded sha256."""
    dump = torch.load(folder / "yolact_tiny_dump.pth", weights_only=True)
    dump["eval_sharp"]["raw"]["conf"] = torch.softmax(dump["train"]["preds"]["conf"], dim=-1)
    weights = dump["weights"]
    state = make_reference_state(weights["keys"], weights["seed"])
    if state_sha256(state) != weights["sha256"]:
        raise RuntimeError("the weight recipe did not reproduce the fixture's weights (sha256 differs)")
    post_sizes = {key: (height, width) for key, (width, height) in dump["meta"]["post_sizes"].items()}
    return ReferenceCase(name="compact", folder=folder, dump=dump, train_state=state, eval_state=state,
                         input_size=192, anchor_scales=(8, 16, 33, 67, 134), num_anchors=2307,
                         post_sizes=post_sizes, num_positives=[7, 4], num_grads=19,
                         max_candidates_per_class=64, fastnms=_compact_fastnms(dump, folder))


def load_full(folder: Path = FULL_DIR) -> ReferenceCase:
    """The 550-px fixture (stored weights; the eval sections use the sharp head delta)."""
    dump = torch.load(folder / "yolact_tiny_dump.pth", weights_only=True)
    state = torch.load(folder / "yolact_tiny_state.pth", weights_only=True)
    sharp_delta = torch.load(folder / "yolact_tiny_sharp_delta.pth", weights_only=True)
    return ReferenceCase(name="full550", folder=folder, dump=dump, train_state=state,
                         eval_state={**state, **sharp_delta}, input_size=550,
                         anchor_scales=(24, 48, 96, 192, 384),
                         num_anchors=19248, post_sizes={"post": (550, 550), "post_640x480": (480, 640)},
                         num_positives=[39, 23], num_grads=18, max_candidates_per_class=163,
                         fastnms=torch.load(folder / "fastnms.pth", weights_only=True))


def fixture_missing(name: str) -> Optional[str]:
    """Why the fixture ``name`` cannot be loaded here, or None when its files are present."""
    folder, needed = {"compact": (COMPACT_DIR, ("yolact_tiny_dump.pth", "fastnms.pth")),
                      "full550": (FULL_DIR, ("yolact_tiny_state.pth", "yolact_tiny_dump.pth", "fastnms.pth",
                                             "yolact_tiny_sharp_delta.pth"))}[name]
    absent = [file for file in needed if not (folder / file).is_file()]
    return f"{name} reference fixture: {', '.join(absent)} not in {folder}" if absent else None


def load_case(name: str) -> ReferenceCase:
    return load_compact() if name == "compact" else load_full()


def unpack_masks(packed: dict) -> np.ndarray:
    """{"bits": uint8 [n, ceil(h*w/8)], "shape": [n, h, w]} -> bool [n, h, w]."""
    count, height, width = packed["shape"]
    bits = packed["bits"].numpy()
    return np.unpackbits(bits, axis=1, count=height * width).reshape(count, height, width).astype(bool)
