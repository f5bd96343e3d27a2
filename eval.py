"""Evaluate or run YOLACT checkpoints.

    python eval.py --weights runs/shapes/weights/best.pth                 # COCO box+mask AP on the val set
    python eval.py --weights W --image in.jpg:out.png                     # one picture
    python eval.py --weights W --images in_dir:out_dir [--save-json]      # a folder
    python eval.py --weights W --images in_dir                            # results json only (no GT)
    python eval.py --weights W --video in.mp4:out.mp4                     # a video (or a webcam index)
    python eval.py --weights W --benchmark --max-images 100               # FPS and time split

Our checkpoints carry their config; a reference checkpoint takes ``--config`` (default coco).
"""
import argparse
import sys

from yolact.entry import run_entry_point, setup_console_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="checkpoint: ours (.pth from runs/) or a reference one")
    parser.add_argument("--config", help="config name or path (default: the checkpoint's own, else coco)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, on --config or else on the checkpoint's own config")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--image", metavar="IN[:OUT]", help="run on one picture (OUT: drawn result)")
    mode.add_argument("--images", metavar="IN_DIR[:OUT_DIR]", help="run on a folder; without OUT_DIR only the json")
    mode.add_argument("--video", metavar="PATH|INDEX[:OUT.mp4]", help="run on a video file or webcam index")
    mode.add_argument("--benchmark", action="store_true", help="measure FPS and the time split on the val images")
    parser.add_argument("--max-images", type=int, help="evaluate/benchmark at most this many images")
    parser.add_argument("--nms", choices=["fast", "cross_class", "standard"], help="NMS (default: the config's)")
    parser.add_argument("--score-threshold", type=float, default=0.15, help="display: hide weaker detections")
    parser.add_argument("--top-k", type=int, default=15, help="display: draw at most this many detections")
    parser.add_argument("--hide-boxes", action="store_true", help="drawings: no box outlines")
    parser.add_argument("--hide-labels", action="store_true", help="drawings: no class name and score labels")
    parser.add_argument("--hide-scores", action="store_true", help="drawings: class names without scores")
    parser.add_argument("--mask-alpha", type=float, default=0.45, help="drawings: mask opacity in [0, 1] (0.45)")
    parser.add_argument("--save-json", metavar="PATH", nargs="?", const="", help="also write detections json")
    parser.add_argument("--output", help="folder for results (default: the checkpoint's run folder)")
    parser.add_argument("--device", default="auto", help='"auto", "cpu", "cuda" or "cuda:N"')
    parser.add_argument("--amp", choices=["off", "bf16", "fp16"], default="off", help="autocast the network")
    parser.add_argument("--channels-last", action="store_true",
                        help="channels_last memory format (already the default on CPU unless --no-optimize)")
    parser.add_argument("--no-optimize", action="store_true",
                        help="run the model as trained: no BatchNorm folding, stacked head convs, channels_last "
                             "or Winograd convs (same results up to float rounding, slower)")
    return parser


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    setup_console_logging()
    from yolact.engine.evaluation.eval_app import EvalOptions, run_eval_app

    return run_eval_app(EvalOptions(**vars(args)))


def main(argv=None) -> int:
    return run_entry_point(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
