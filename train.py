"""Train YOLACT: ``python train.py --config coco.yaml [key=value ...]``.

A bare config name is looked up in configs/; trailing ``key=value`` words override config keys
(``train.lr=0.002 model.backbone.layers=[3,4,6,3]``). Runs go to ``runs/<name>/``; follow them
with ``tensorboard --logdir runs``.

Examples:
    python train.py --config shapes                          # the quick start (makes data/shapes/)
    python train.py --config coco train.batch_size=4 train.amp=bf16
    python train.py --config shapes --name s400 train.max_iter=400
    python train.py --config shapes --resume                 # continue the latest shapes run
    python train.py --config shapes --resume runs/s400 train.max_iter=800
    python train.py --config coco --print-config             # the resolved config
"""
import argparse
import sys

from yolact.entry import run_entry_point, setup_console_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="shapes", help="config name in configs/ or a path (default: shapes)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.lr=0.002")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--name", help="run folder name under train.output_dir (default: <config>, auto-numbered)")
    parser.add_argument("--resume", nargs="?", const="latest", metavar="PATH",
                        help="continue the latest run of this config, or the checkpoint/run folder PATH")
    parser.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    return parser


def _main(argv) -> int:
    from yolact.config import dump_config, load_config

    args = build_parser().parse_args(argv)
    config = load_config(args.config, args.overrides)
    if args.print_config:
        print(dump_config(config), end="")
        return 0
    setup_console_logging()
    from yolact.engine.train.launch import launch_training

    return launch_training(config, config_name=args.config, run_name=args.name, resume=args.resume,
                           overrides=args.overrides, final_eval=not args.no_eval)


def main(argv=None) -> int:
    return run_entry_point(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
