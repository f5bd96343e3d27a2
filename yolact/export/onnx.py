"""ONNX export of the YOLACT network, and a check of the exported graph against PyTorch.

Both graphs take one input ``images`` float32 [N, 3, S, S]: normalised RGB (the eval
transform, SPEC §8) at the config's fixed input size S; N is dynamic when the exporter allows
it (both exporters tried here do). Outputs, in this order and with these names:

- raw (default): the model's eval outputs, ``cls_logits`` [N, A, C+1] raw logits (background
  at 0), ``box_deltas`` [N, A, 4] encoded against the anchors, ``mask_coeffs`` [N, A, k] in
  [-1, 1], ``prototypes`` [N, Hp, Wp, k] >= 0 channels last, ``anchors`` [A, 4] (cx, cy, w, h)
  relative (a constant of the graph);
- with post-processing: ``class_probs`` [N, A, C] (softmax over the C+1 logits, then the
  background column dropped, as the post-processor scores candidates), ``boxes`` [N, A, 4]
  xyxy relative to the input, not clipped (``yolact.box_ops.decode_boxes``), ``mask_coeffs``
  and ``prototypes`` as above.

NMS and mask assembly are in neither graph: Fast NMS keeps a data-dependent number of boxes
per class (a top-k per class, a boolean keep mask, a sort of the survivors), which this export
does not express in ONNX. The host runs them on the graph's outputs with ``yolact.postprocess``,
per image: ``scores = class_probs[i].T`` (C, A), keep the anchors whose best score is
``> conf_threshold``, then ``fast_nms(boxes[i][keep], scores[:, keep], mask_coeffs[i][keep])``
and ``assemble_masks(prototypes[i], ...)``; from the raw graph, ``YolactPostProcessor`` takes
the outputs as they are.
"""
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from yolact.box_ops import decode_boxes
from yolact.errors import YolactError

__all__ = ["INPUT_NAME", "RAW_OUTPUT_NAMES", "POSTPROCESSED_OUTPUT_NAMES", "DEFAULT_ATOL", "DEFAULT_RTOL",
           "ExportGraph", "ExportResult", "require_onnx", "export_onnx", "check_images", "verify_onnx",
           "export_checkpoint"]

logger = logging.getLogger("yolact")

INPUT_NAME = "images"
RAW_OUTPUT_NAMES = ("cls_logits", "box_deltas", "mask_coeffs", "prototypes", "anchors")
POSTPROCESSED_OUTPUT_NAMES = ("class_probs", "boxes", "mask_coeffs", "prototypes")
# ONNX Runtime vs PyTorch, elementwise: |onnx - torch| <= DEFAULT_ATOL + DEFAULT_RTOL * |torch|.
# Float32 rounding alone moves yolact_base's (ResNet-101, 550) logits by ~3e-3: PyTorch float32
# is that far from a float64 run, ONNX Runtime no farther. An export error (a wrong resize,
# channel order or layout) is off by 0.1 or more, far above these.
DEFAULT_ATOL, DEFAULT_RTOL = 1e-2, 1e-3
# Example batch of the export: torch.export specialises a dimension of size 1, so 2 keeps N free.
_EXAMPLE_BATCH = 2
_INSTALL_HINT = 'pip install -e ".[export]"'


class ExportGraph(nn.Module):
    """The network as exported: ``images`` [N, 3, S, S] -> a tuple in ``output_names`` order.

    The anchors depend only on S, so they are computed once here (one eager forward) and held
    as a buffer: the graph returns them (raw) or decodes the boxes with them (post-processed).
    Puts ``model`` in eval mode.

    Args:
        model: a :class:`~yolact.modeling.yolact.Yolact`.
        input_size: S, the config's ``model.input_size``.
        with_postprocess: add the softmax and the box decoding (see the module docstring).
    """

    def __init__(self, model: nn.Module, *, input_size: int, with_postprocess: bool = False):
        super().__init__()
        self.model = model.eval()
        self.input_size = input_size
        self.with_postprocess = with_postprocess
        self.output_names = POSTPROCESSED_OUTPUT_NAMES if with_postprocess else RAW_OUTPUT_NAMES
        with torch.no_grad():
            anchors = model(self.example_images())["anchors"]  # (A, 4) cxcywh relative
        self.register_buffer("anchors", anchors.detach().clone())
        self.eval()

    def example_images(self, batch_size: int = _EXAMPLE_BATCH) -> torch.Tensor:
        """Zeros [batch_size, 3, S, S] on the model's device, in its dtype."""
        parameter = next(self.model.parameters())
        return parameter.new_zeros((batch_size, 3, self.input_size, self.input_size))

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """images [N, 3, S, S] -> the outputs of the module docstring, as a tuple."""
        outputs = self.model(images)
        if not self.with_postprocess:
            return (outputs["cls_logits"], outputs["box_deltas"], outputs["mask_coeffs"],
                    outputs["prototypes"], self.anchors)
        class_probs = outputs["cls_logits"].softmax(dim=-1)[..., 1:]  # (N, A, C), background dropped
        boxes = decode_boxes(outputs["box_deltas"], self.anchors)  # (N, A, 4) xyxy relative
        return class_probs, boxes, outputs["mask_coeffs"], outputs["prototypes"]


@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote, read back from the file."""
    path: Path
    exporter: str                    # "dynamo" (torch.export based) or "torchscript" (the fallback)
    opset: int                       # the default-domain opset of the written graph
    output_names: Tuple[str, ...]
    output_shapes: Dict[str, list]   # per output, ints and "batch" for the dynamic dimension
    dynamic_batch: bool


def require_onnx():
    """The ``onnx`` module, or a YolactError telling how to install the export extra."""
    try:
        import onnx
    except ImportError:
        raise YolactError(f"ONNX export needs the onnx package: {_INSTALL_HINT}") from None
    return onnx


def _export_dynamo(graph: ExportGraph, images: torch.Tensor, path: Path, opset: Optional[int]) -> None:
    # The anchors output is a constant: onnx_ir's initializer deduplication warns that it skips
    # it (a graph output), which is expected here and would only puzzle users.
    dedup_logger = logging.getLogger("onnx_ir.passes.common.initializer_deduplication")
    previous_level = dedup_logger.level
    dedup_logger.setLevel(logging.ERROR)
    try:
        torch.onnx.export(graph, (images,), str(path), dynamo=True, input_names=[INPUT_NAME],
                          output_names=list(graph.output_names), opset_version=opset,
                          dynamic_shapes={INPUT_NAME: {0: torch.export.Dim("batch")}},
                          external_data=False, verbose=False)
    finally:
        dedup_logger.setLevel(previous_level)


def _export_torchscript(graph: ExportGraph, images: torch.Tensor, path: Path, opset: Optional[int]) -> None:
    dynamic_axes = {name: {0: "batch"} for name in (INPUT_NAME,) + graph.output_names if name != "anchors"}
    with warnings.catch_warnings():
        # The trace turns feature sizes into constants: intended, the input size is fixed.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(graph, (images,), str(path), dynamo=False, input_names=[INPUT_NAME],
                          output_names=list(graph.output_names), opset_version=opset,
                          dynamic_axes=dynamic_axes)


_EXPORTERS = (("dynamo", _export_dynamo), ("torchscript", _export_torchscript))


def _dims(value_info) -> list:
    return [dim.dim_param or dim.dim_value for dim in value_info.type.tensor_type.shape.dim]


def _read_back(onnx, path: Path, exporter: str, expected_names: Sequence[str]) -> ExportResult:
    proto = onnx.load(str(path))
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as error:
        reason = str(error).splitlines()[0]
        raise YolactError(f"{path}: the exported graph is not valid ONNX ({reason})") from None
    names = tuple(output.name for output in proto.graph.output)
    if names != tuple(expected_names):
        raise YolactError(f"{path}: the exported outputs are {list(names)}, expected {list(expected_names)}")
    opset = next(entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx"))
    return ExportResult(path=path, exporter=exporter, opset=opset, output_names=names,
                        output_shapes={output.name: _dims(output) for output in proto.graph.output},
                        dynamic_batch=isinstance(_dims(proto.graph.input[0])[0], str))


def export_onnx(graph: ExportGraph, output_path: Path, *, opset: Optional[int] = None) -> ExportResult:
    """Write ``graph`` to ``output_path`` as one self-contained ONNX file.

    The torch.export-based exporter (``dynamo=True``, needs onnxscript) is tried first; if it
    fails, the TorchScript exporter (``dynamo=False``) is used and a warning says why. Both
    mark the batch dimension dynamic. The file is validated with ``onnx.checker``.

    Args:
        opset: the default-domain opset; None lets the exporter choose.
    Raises:
        YolactError: onnx is missing, both exporters failed, or the graph is invalid.
    """
    onnx = require_onnx()
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    images = graph.example_images()
    failures = []
    for exporter, export in _EXPORTERS:
        try:
            export(graph, images, output_path, opset)
        # The exporters raise many types (export errors, dispatch errors, ImportError of onnxscript).
        except Exception as error:  # noqa: BLE001
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            failures.append(f"{exporter}: {reason}")
            logger.warning(f"the {exporter} ONNX exporter failed ({reason})")
            continue
        result = _read_back(onnx, output_path, exporter, graph.output_names)
        if opset is not None and result.opset != opset:
            logger.warning(f"asked for opset {opset}, the {exporter} exporter wrote opset {result.opset}")
        return result
    output_path.unlink(missing_ok=True)  # no half-written file left behind
    raise YolactError(f"{output_path}: ONNX export failed ({'; '.join(failures)})")


def check_images(image_path: Optional[Path], *, input_size: int, batch_size: int = _EXAMPLE_BATCH,
                 seed: int = 0) -> torch.Tensor:
    """The check input: one picture through the eval transform [1, 3, S, S], else seeded
    standard-normal values [batch_size, 3, S, S] (the scale of normalised pixels)."""
    if image_path is None:
        generator = torch.Generator().manual_seed(seed)
        return torch.randn((batch_size, 3, input_size, input_size), generator=generator)
    from yolact.data.transforms import eval_transform
    from yolact.utils.image_io import read_image

    image_bgr = read_image(image_path)
    if image_bgr is None:
        raise YolactError(f"{image_path}: cannot read the picture for --check")
    return eval_transform(image_bgr, input_size)[None]


def _max_abs_difference(got: np.ndarray, expected: np.ndarray) -> float:
    """Max |got - expected|, where equal values (infinities and NaNs included) count 0."""
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))
    return float(np.where(same, 0, np.abs(got - expected)).max()) if got.size else 0.0


def verify_onnx(graph: ExportGraph, onnx_path: Path, images: torch.Tensor, *, atol: float = DEFAULT_ATOL,
                rtol: float = DEFAULT_RTOL) -> Optional[Dict[str, float]]:
    """Run the exported file (ONNX Runtime, CPU) and ``graph`` (PyTorch) on the same images.

    Returns:
        the max abs difference per output name, or None when onnxruntime is not installed.
    Raises:
        YolactError: a shape differs, or an output fails ``np.allclose(onnx, torch, rtol, atol)``.
    """
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_outputs = session.run(list(graph.output_names), {INPUT_NAME: images.detach().cpu().numpy()})
    with torch.no_grad():
        torch_outputs = graph(images.to(graph.anchors.device, graph.anchors.dtype))
    differences = {}
    for name, got, expected in zip(graph.output_names, onnx_outputs, torch_outputs):
        expected = expected.detach().cpu().numpy()
        if got.shape != expected.shape:
            raise YolactError(f"{onnx_path}: ONNX Runtime gives {name} of shape {list(got.shape)}, "
                              f"PyTorch {list(expected.shape)}")
        differences[name] = _max_abs_difference(got, expected)
        if not np.allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True):
            raise YolactError(f"{onnx_path}: ONNX Runtime and PyTorch disagree on {name} (max abs diff "
                              f"{differences[name]:.3g}; tolerance atol {atol:g} + rtol {rtol:g})")
    return differences


def _describe(result: ExportResult, input_size: int) -> str:
    outputs = ", ".join(f"{name} [{', '.join(map(str, shape))}]"
                        for name, shape in result.output_shapes.items())
    return (f"exported {result.path} with the {result.exporter} exporter (opset {result.opset}, batch "
            f"{'dynamic' if result.dynamic_batch else 'fixed'}): {INPUT_NAME} [batch, 3, {input_size}, "
            f"{input_size}] -> {outputs}")


def export_checkpoint(weights: Path, output_path: Path, *, config_name: Optional[str] = None,
                      overrides: Sequence[str] = (), with_postprocess: bool = False,
                      opset: Optional[int] = None, check_image: Optional[Path] = None,
                      atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL
                      ) -> Tuple[ExportResult, Optional[Dict[str, float]]]:
    """Load a checkpoint on CPU, export it, check it; logs what it did on the ``yolact`` logger.

    Returns:
        the export result and the max abs differences of :func:`verify_onnx` (None: skipped).
    """
    from yolact.engine.evaluation.model_loading import load_model_for_inference

    require_onnx()
    loaded = load_model_for_inference(Path(weights), config_name=config_name, overrides=overrides,
                                      device=torch.device("cpu"))
    input_size = loaded.config.model.input_size
    # Read the picture before exporting, so that a bad path fails fast.
    images = check_images(check_image, input_size=input_size) if check_image is not None else None
    graph = ExportGraph(loaded.model, input_size=input_size, with_postprocess=with_postprocess)
    result = export_onnx(graph, Path(output_path), opset=opset)
    logger.info(_describe(result, input_size))
    if images is None:
        batch_size = _EXAMPLE_BATCH if result.dynamic_batch else 1
        images = check_images(None, input_size=input_size, batch_size=batch_size)
    differences = verify_onnx(graph, result.path, images, atol=atol, rtol=rtol)
    source = check_image if check_image is not None else f"seeded random input {list(images.shape)}"
    if differences is None:
        logger.info(f"check skipped: onnxruntime is not installed ({_INSTALL_HINT})")
    else:
        logger.info(f"check against PyTorch on {source}: max abs diff "
                    + ", ".join(f"{name} {value:.3g}" for name, value in differences.items())
                    + f" (within atol {atol:g} + rtol {rtol:g})")
    if with_postprocess:
        logger.info("NMS and mask assembly are not in the graph: run them on the host (yolact.postprocess)")
    return result, differences
