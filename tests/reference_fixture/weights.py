"""The compact reference fixture's weights, rebuilt from its seeded recipe (no weight file).

The rule (tests/fixtures/reference/README.md, "The weights"): one numpy legacy stream
``RandomState(seed)`` visits the reference's state_dict keys in order; each float tensor takes
``numel`` uniform doubles u in [0, 1) and becomes float32((2u - 1) * half + centre), computed in
float64 and rounded once. ``half`` and ``centre`` depend on the key (LeCun-uniform convolutions,
BatchNorm far from the identity). A final "head step" makes the class kernels zero-sum, raises
the background logit and doubles three layers, again in float64 with one rounding per tensor.
"""
import hashlib
import math
from typing import Dict, Sequence, Tuple

import numpy as np
import torch

__all__ = ["make_reference_state", "state_sha256"]

NUM_CLASSES_WITH_BACKGROUND = 81
_HEAD = "prediction_layers.0."
_DOUBLED = (_HEAD + "bbox_layer.weight", _HEAD + "mask_layer.weight", "proto_net.10.weight")
# BatchNorm tensors: (half width, centre) of their uniform range
_BATCHNORM_RANGES = {"weight": (0.25, 1.0), "bias": (0.25, 0.0), "running_mean": (0.25, 0.0),
                     "running_var": (0.5, 1.0)}


def _conv_fan_in(shape: Sequence[int]) -> int:
    """in_channels * kh * kw of a 4-D convolution weight [out, in, kh, kw]."""
    return int(shape[1]) * int(shape[2]) * int(shape[3])


def _uniform_range(name: str, shape: Tuple[int, ...],
                   shapes: Dict[str, Tuple[int, ...]]) -> Tuple[float, float]:
    """(half, centre) of the recipe's table for one key."""
    stem, leaf = name.rsplit(".", 1)
    weight_shape = shapes.get(stem + ".weight")
    if leaf == "weight" and len(shape) == 4:
        return math.sqrt(3.0 / _conv_fan_in(shape)), 0.0
    if leaf == "bias" and weight_shape is not None and len(weight_shape) == 4:
        return 1.0 / math.sqrt(_conv_fan_in(weight_shape)), 0.0
    if leaf in _BATCHNORM_RANGES and len(shape) == 1:
        return _BATCHNORM_RANGES[leaf]
    raise ValueError(f"the recipe has no rule for {name} {list(shape)}")


def _head_step(state: Dict[str, torch.Tensor]) -> None:
    """Zero-sum 3x3 class kernels times 4, background bias + 2, three layers doubled (in place)."""
    name = _HEAD + "conf_layer.weight"
    weight = state[name].double()                                   # [243, 64, 3, 3]
    taps = weight.reshape(-1, weight.shape[2] * weight.shape[3])    # [243*64, 9]
    means = torch.tensor([math.fsum(row) / len(row) for row in taps.tolist()], dtype=torch.float64)
    state[name] = ((taps - means[:, None]) * 4.0).reshape(weight.shape).float()
    name = _HEAD + "conf_layer.bias"
    bias = state[name].double().reshape(-1, NUM_CLASSES_WITH_BACKGROUND).clone()  # [anchors per cell, 81]
    bias[:, 0] += 2.0
    state[name] = bias.reshape(-1).float()
    for name in _DOUBLED:
        state[name] = state[name] * 2  # a power of two: exact in float32


def make_reference_state(keys: Sequence[Sequence], seed: int) -> Dict[str, torch.Tensor]:
    """The fixture's state_dict, in the reference's key names and order.

    Args:
        keys: (name, shape[, dtype]) per tensor, in state_dict order (the dump's
            ``weights.keys`` or ``state_keys.txt``).
        seed: the recipe's seed (the dump's ``weights.seed``, 7).
    """
    stream = np.random.RandomState(int(seed))
    shapes = {entry[0]: tuple(int(d) for d in entry[1]) for entry in keys}
    state: Dict[str, torch.Tensor] = {}
    for name, shape in shapes.items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(0, dtype=torch.int64)
            continue
        half, centre = _uniform_range(name, shape, shapes)
        uniform = stream.random_sample(int(np.prod(shape)))           # float64, C order
        values = ((2.0 * uniform - 1.0) * half + centre).astype(np.float32)
        state[name] = torch.from_numpy(values.reshape(shape))
    _head_step(state)
    return state


def state_sha256(state: Dict[str, torch.Tensor]) -> str:
    """sha256 over, per key in order, "name|dtype|shape\\n" and the tensor's little-endian bytes."""
    digest = hashlib.sha256()
    for name, tensor in state.items():
        tensor = tensor.detach().cpu().contiguous()
        dtype = str(tensor.dtype).replace("torch.", "")
        digest.update(f"{name}|{dtype}|{list(tensor.shape)}\n".encode())
        array = tensor.reshape(-1).numpy()
        digest.update(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
    return digest.hexdigest()
