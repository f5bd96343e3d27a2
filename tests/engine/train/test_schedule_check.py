"""Schedule warnings: warmup or lr steps that do not fit in max_iter are said before training."""
import logging

from yolact.config import load_config
from yolact.engine.train.schedule_check import schedule_warnings, warn_about_schedule


def test_a_fitting_schedule_says_nothing():
    assert schedule_warnings(max_iter=2400, warmup_iters=100, lr_steps=[1800, 2200], val_interval=800,
                             save_interval=800) == []


def test_max_iter_below_warmup_and_steps_beyond_the_end():
    """The issue's case: train.max_iter=30 with warmup 100 and lr_steps [1800, 2200]."""
    assert schedule_warnings(max_iter=30, warmup_iters=100, lr_steps=[1800, 2200]) == [
        "train.warmup_iters=100 is not below max_iter=30: the learning rate never reaches train.lr",
        "train.lr_steps [1800, 2200] are at or beyond max_iter=30: those decays never happen"]
    assert schedule_warnings(max_iter=30, warmup_iters=0, lr_steps=[10, 30], val_interval=30, save_interval=0) == [
        "train.lr_steps [30] are at or beyond max_iter=30: that decay never happens",
        "train.val_interval=30 is not below max_iter=30: only the final validation runs"]


def test_warnings_use_the_autoscaled_schedule(caplog):
    config = load_config("shapes", ["train.max_iter=60", "train.warmup_iters=100", "train.lr_steps=[1800,2200]",
                                    "train.batch_size=16", "train.autoscale=true", "train.val_interval=0",
                                    "train.save_interval=10", "train.lr_schedule=step",
                                    "train.warmup_fraction=null"])
    logger = logging.getLogger("yolact")
    logger.addHandler(caplog.handler)
    try:
        problems = warn_about_schedule(config)
    finally:
        logger.removeHandler(caplog.handler)
    assert problems == [  # batch 16: max_iter and the steps halved
        "train.warmup_iters=100 is not below max_iter=30: the learning rate never reaches train.lr",
        "train.lr_steps [900, 1100] are at or beyond max_iter=30: those decays never happen"]
    messages = list(dict.fromkeys(r.getMessage() for r in caplog.records))  # once even if propagated too
    assert messages == [f"schedule (after autoscaling to the batch size): {p}" for p in problems]


def test_cosine_with_a_warmup_fraction_ignores_lr_steps_and_warmup_iters():
    config = load_config("shapes", ["train.max_iter=60", "train.warmup_iters=100", "train.lr_steps=[1800,2200]",
                                    "train.lr_schedule=cosine", "train.warmup_fraction=0.05",
                                    "train.val_interval=0", "train.save_interval=0"])
    assert warn_about_schedule(config) == []
    assert warn_about_schedule(load_config("shapes", ["train.max_iter=60", "train.lr_schedule=cosine",
                                                      "train.warmup_fraction=null", "train.warmup_iters=100",
                                                      "train.val_interval=0", "train.save_interval=0"])) == [
        "train.warmup_iters=100 is not below max_iter=60: the learning rate never reaches train.lr"]
