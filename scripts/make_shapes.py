#!/usr/bin/env python
"""Make the synthetic shapes dataset (data/shapes by default); same as `python -m yolact.data.shapes`.

Usage: python scripts/make_shapes.py [--root data/shapes] [--num-train 2000] [--num-val 60]
                                     [--image-size 160] [--seed 0] [--force]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from yolact.data.shapes import main  # noqa: E402  (after the path fix above)

if __name__ == "__main__":
    raise SystemExit(main())
