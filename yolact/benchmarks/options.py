"""What ``scripts/benchmark.py`` was asked to measure (its ``--help`` documents each option)."""
from dataclasses import dataclass
from typing import Optional, Sequence

__all__ = ["BenchmarkOptions"]


@dataclass(frozen=True)
class BenchmarkOptions:
    command: str                       # "nms", "loss", "train", "infer", "data" or "learn"
    overrides: Sequence[str] = ()      # config key=value words (e.g. data paths)
    device: str = "auto"
    backbone: str = "r50"              # "r101", "r50", "r18" or "tiny"
    size: int = 550                    # input size
    batch: Optional[int] = None        # None: the command's default
    classes: int = 80
    width: int = 256                   # FPN/protonet/head channels
    objects: int = 5                   # objects per image (loss, train)
    repeats: int = 10
    warmup: int = 2
    amp: str = "auto"                  # train: comma list of "off,bf16,fp16"
    threads: Optional[int] = None
    config: Optional[str] = None       # data/train: dataset config (shapes); learn: recipe (small)
    json: Optional[str] = None         # where the results go
    candidates: Optional[str] = None   # nms: a .pth of NMS candidates (the reference's fastnms.pth)
    budget: float = 15.0               # learn: train.time in minutes
    train: Optional[str] = None        # learn: training folder with images/ and annotations.json
    val: Optional[str] = None          # learn: validation folder, the same layout
    seed: int = 0                      # learn: train.seed
    models: str = "yolact"             # infer: comma list of "yolact", "yolact++"
