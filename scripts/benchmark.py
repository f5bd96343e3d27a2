"""Speed benchmarks: medians after warm-up, printed as a table and written as json.

    python scripts/benchmark.py nms     # Fast NMS vs cross-class vs torchvision batched_nms at 550
    python scripts/benchmark.py loss    # the criterion, forward + backward, batch 8 at 550
    python scripts/benchmark.py train   # training iterations/s: fp32/bf16/fp16, channels_last, data in/out
    python scripts/benchmark.py infer   # images/s through network + Fast NMS + masks, batch 1 and 8
    python scripts/benchmark.py infer --models yolact,yolact++   # and YOLACT++ on the same backbone
    python scripts/benchmark.py data    # loading + augmentation images/s with 0, 1, 2 workers
    python scripts/benchmark.py learn --budget 15 --train DIR --val DIR [--config small] [--seed N]
                                        # train the recipe within the budget; COCOeval mask/box AP
"""
import argparse
import dataclasses
import json
import platform
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from yolact.utils.timing import format_table  # noqa: E402

BACKBONES = {"r101": ("bottleneck", [3, 4, 23, 3]), "r50": ("bottleneck", [3, 4, 6, 3]),
             "r18": ("basic", [2, 2, 2, 2]), "tiny": ("basic", [1, 1, 1, 1])}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["nms", "loss", "train", "infer", "data", "learn"])
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (e.g. data paths)")
    parser.add_argument("--device", default="auto", help='"auto", "cpu" or "cuda"')
    parser.add_argument("--backbone", choices=sorted(BACKBONES), default="r50", help="train/infer/loss model")
    parser.add_argument("--size", type=int, default=550, help="input size")
    parser.add_argument("--batch", type=int, help="batch size (default: per command)")
    parser.add_argument("--classes", type=int, default=80, help="foreground classes")
    parser.add_argument("--width", type=int, default=256, help="FPN/protonet/head channels")
    parser.add_argument("--objects", type=int, default=5, help="objects per image (loss, train)")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before measuring")
    parser.add_argument("--amp", default="auto", help='train: comma list of "off,bf16,fp16" (auto: fp16 on CUDA only)')
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--config",
                        help="data/train: dataset config (default shapes); learn: recipe (default small)")
    parser.add_argument("--json", help="write the results here (default: runs/benchmark/<command>.json)")
    parser.add_argument("--candidates", metavar="PATH",
                        help="nms: candidates .pth, e.g. the reference's fastnms.pth fixture (default: seeded random)")
    parser.add_argument("--budget", type=float, default=15.0, help="learn: training time budget in minutes")
    parser.add_argument("--train", help="learn: training folder (images/ and annotations.json)")
    parser.add_argument("--val", help="learn: validation folder (images/ and annotations.json)")
    parser.add_argument("--seed", type=int, default=0, help="learn: train.seed")
    parser.add_argument("--models", default="yolact",
                        help='infer: comma list of "yolact", "yolact++" (the plus config of --backbone: DCNv2, '
                             '9 anchors per cell, mask-IoU re-scoring)')
    return parser


def config_for(args, num_classes=None):
    from yolact.build import with_num_classes
    from yolact.config import load_config

    block, layers = BACKBONES[args.backbone]
    scales = [int(s * args.size / 550) or 1 for s in (24, 48, 96, 192, 384)]
    overrides = [f"model.backbone.block={block}", f"model.backbone.layers={layers}", "model.backbone.pretrained=null",
                 f"model.input_size={args.size}", f"model.anchor_scales={scales}", f"model.fpn_channels={args.width}",
                 f"model.proto_channels={args.width}", f"model.head_channels={args.width}",
                 "data.num_workers=0", *args.overrides]
    return with_num_classes(load_config(args.config, overrides), num_classes or args.classes)


def _main(argv) -> int:
    from yolact.benchmarks.options import BenchmarkOptions
    from yolact.entry import setup_console_logging

    setup_console_logging()  # the training's plan, validations and final AP, on the console and in train.log
    args = BenchmarkOptions(**vars(build_parser().parse_args(argv)))
    args = dataclasses.replace(args, config=args.config or ("small" if args.command == "learn" else "shapes"))
    if args.threads:
        torch.set_num_threads(args.threads)
    from yolact.engine.runtime import select_device

    device = select_device(args.device, key="--device")
    from yolact.benchmarks import run_benchmark

    rows, columns, notes = run_benchmark(args.command, args, device, config_for)
    print(f"{args.command} on {device} ({torch.get_num_threads()} threads, torch {torch.__version__})")
    print(format_table(rows, columns))
    for note in notes:
        print(note)
    out = Path(args.json) if args.json else REPO / "runs" / "benchmark" / f"{args.command}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": args.command, "device": str(device), "threads": torch.get_num_threads(),
                               "torch": torch.__version__, "machine": platform.machine(),
                               "args": {k: v for k, v in dataclasses.asdict(args).items() if k != "json"},
                               "rows": rows, "notes": notes}, indent=2))
    print(f"written to {out}")
    return 0


def main(argv=None) -> int:
    from yolact.entry import run_entry_point

    return run_entry_point(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
