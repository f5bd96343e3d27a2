#!/usr/bin/env python
"""Draw a dataset's ground truth to a folder: masks, boxes, crowd regions (grey) and class names.

    python scripts/browse_dataset.py --config shapes                       # 20 val images -> runs/browse/
    python scripts/browse_dataset.py --config coco --split train --count 50 --out runs/browse-coco
    python scripts/browse_dataset.py --config shapes --split train --augmented   # after the training augmentation

The dataset is the config's (``data.train_*`` / ``data.val_*``; ``key=value`` overrides apply).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from yolact.entry import run_entry_point, setup_console_logging  # noqa: E402  (after the path fix above)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="shapes", help="config name in configs/ or a path (default: shapes)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.add_argument("--split", choices=["train", "val"], default="val", help="which dataset (default: val)")
    parser.add_argument("--count", type=int, default=20, help="pictures to draw (default 20; 0: all)")
    parser.add_argument("--start", type=int, default=0, help="index of the first image (default 0)")
    parser.add_argument("--augmented", action="store_true",
                        help="draw the samples after the training augmentation (at the network's input size)")
    parser.add_argument("--out", default="runs/browse", help="output folder (default: runs/browse)")
    return parser


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    setup_console_logging()
    from yolact.build import build_dataset
    from yolact.config import load_config
    from yolact.data.browse import browse_dataset

    config = load_config(args.config, args.overrides)
    dataset = build_dataset(config, args.split, train_transform=args.augmented)
    written = browse_dataset(dataset, Path(args.out), count=args.count or None, augmented=args.augmented,
                             start=args.start)
    print(f"{written} pictures of the {args.split} set written to {args.out}/")
    return 0


def main(argv=None) -> int:
    return run_entry_point(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
