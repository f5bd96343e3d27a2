#!/usr/bin/env python
"""Export a YOLACT checkpoint to ONNX and check the graph against PyTorch with ONNX Runtime.

    python scripts/export_onnx.py --weights runs/shapes/weights/best.pth --output yolact.onnx
    python scripts/export_onnx.py --weights W --output yolact.onnx --with-postprocess --check in.jpg
    python scripts/export_onnx.py --weights yolact_base_54_800000.pth --config coco --output base.onnx

The graph takes ``images`` [N, 3, S, S] (normalised RGB at the config's input size S, N
dynamic) and returns the raw outputs ``cls_logits, box_deltas, mask_coeffs, prototypes,
anchors``; with ``--with-postprocess`` it returns ``class_probs`` (softmax, background
dropped), ``boxes`` (decoded xyxy relative), ``mask_coeffs``, ``prototypes``. NMS and mask
assembly stay in the host code (Fast NMS's data-dependent shapes are not expressed in ONNX
here; see yolact/export/onnx.py). Needs the export extra: pip install -e ".[export]".
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from yolact.entry import run_entry_point, setup_console_logging  # noqa: E402  (after the path fix above)
from yolact.export.onnx import DEFAULT_ATOL, DEFAULT_RTOL  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True,
                        help="checkpoint: ours (.pth from runs/) or a reference one")
    parser.add_argument("--config", help="config name or path (default: the checkpoint's own, else coco)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (need --config)")
    parser.add_argument("--output", required=True, help="the .onnx file to write (one file, weights inside)")
    parser.add_argument("--with-postprocess", action="store_true",
                        help="also softmax the classes and decode the boxes in the graph "
                             "(NMS stays on the host)")
    parser.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    parser.add_argument("--check", metavar="IMAGE",
                        help="check on this picture (default: a seeded random input)")
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL, help="check: absolute tolerance")
    parser.add_argument("--rtol", type=float, default=DEFAULT_RTOL, help="check: relative tolerance")
    return parser


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    setup_console_logging()
    from yolact.export.onnx import export_checkpoint

    export_checkpoint(Path(args.weights), Path(args.output), config_name=args.config,
                      overrides=args.overrides, with_postprocess=args.with_postprocess, opset=args.opset,
                      check_image=Path(args.check) if args.check else None, atol=args.atol, rtol=args.rtol)
    return 0


def main(argv=None) -> int:
    return run_entry_point(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
