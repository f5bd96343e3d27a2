"""Learning-rate schedules (step, cosine, linear; warmup as iterations or a fraction) and the
optimizer's parameter groups."""
import math

import pytest
import torch
from torch import nn

from yolact.build import build_lr_schedule, build_optimizer, with_num_classes
from yolact.config import load_config
from yolact.engine.train.lr_schedule import LrSchedule, learning_rate_at
from yolact.engine.train.optimizer import make_optimizer, parameter_groups

WARM = dict(base_lr=0.1, warmup_init_lr=0.0, warmup_iters=10, total_iters=110, final_lr_ratio=0.01)


def test_step_schedule_is_the_reference():
    schedule = LrSchedule(kind="step", base_lr=1e-3, warmup_init_lr=1e-4, warmup_iters=500, total_iters=800000,
                          lr_steps=(280000, 600000), gamma=0.1)
    for iteration in (0, 250, 500, 501, 279999, 280000, 600000, 799999):
        assert schedule(iteration) == learning_rate_at(iteration, base_lr=1e-3, warmup_init_lr=1e-4,
                                                       warmup_iters=500, lr_steps=(280000, 600000), gamma=0.1)


def test_cosine_and_linear_values():
    cosine, linear = LrSchedule(kind="cosine", **WARM), LrSchedule(kind="linear", **WARM)
    assert cosine(5) == linear(5) == 0.05  # warmup, the same for every kind
    assert cosine(10) == linear(10) == 0.1
    assert cosine(60) == pytest.approx(0.001 + 0.099 * 0.5)  # half way: cos(pi / 2) = 0
    assert cosine(35) == pytest.approx(0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert linear(60) == pytest.approx(0.1 - 0.099 * 0.5)
    assert cosine(110) == linear(110) == pytest.approx(0.001)
    assert cosine(500) == linear(500) == pytest.approx(0.001)  # stays at the final rate
    with pytest.raises(ValueError, match="lr schedule"):
        LrSchedule(kind="poly", **WARM)


def test_build_lr_schedule_reads_kind_and_warmup_fraction():
    schedule, max_iter = build_lr_schedule(load_config("shapes", ["train.lr_schedule=cosine",
                                                                   "train.warmup_fraction=0.05"]))
    assert (schedule.kind, schedule.warmup_iters, schedule.total_iters, max_iter) == ("cosine", 120, 2400, 2400)
    assert schedule.final_lr_ratio == 0.01
    assert build_lr_schedule(load_config("shapes", ["train.warmup_fraction=null",
                                                    "train.warmup_iters=100"]))[0].warmup_iters == 100


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Conv2d(4, 2, 1)
        self.norm = nn.GroupNorm(1, 2)


def test_parameter_groups():
    net = Net()
    one = parameter_groups(net, weight_decay=5e-4, no_decay_norm_bias=False)
    assert len(one) == 1 and one[0]["weight_decay"] == 5e-4 and one[0]["params"] == list(net.parameters())
    decay, no_decay = parameter_groups(net, weight_decay=5e-4, no_decay_norm_bias=True)
    assert decay == {"params": [net.conv.weight, net.head.weight], "weight_decay": 5e-4}
    assert no_decay == {"params": [net.bn.weight, net.bn.bias, net.head.bias, net.norm.weight, net.norm.bias],
                        "weight_decay": 0.0}


def test_optimizers():
    net = Net()
    sgd = make_optimizer(net, name="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4)
    assert type(sgd) is torch.optim.SGD and len(sgd.param_groups) == 1
    assert (sgd.param_groups[0]["momentum"], sgd.param_groups[0]["weight_decay"]) == (0.9, 5e-4)
    adamw = make_optimizer(net, name="adamw", lr=0.001, momentum=0.9, weight_decay=0.05, no_decay_norm_bias=True)
    assert type(adamw) is torch.optim.AdamW
    assert [(g["betas"], g["weight_decay"], len(g["params"])) for g in adamw.param_groups] == [
        ((0.9, 0.999), 0.05, 2), ((0.9, 0.999), 0.0, 5)]
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer(net, name="lamb", lr=0.1, momentum=0.9, weight_decay=0.0)


def adamw_float64(params, grads_per_step, *, lr, betas, eps, weight_decays):
    """AdamW (decoupled decay, bias-corrected moments) written out in float64: the reference."""
    values = [p.detach().double().clone() for p in params]
    first = [torch.zeros_like(v) for v in values]
    second = [torch.zeros_like(v) for v in values]
    for step, grads in enumerate(grads_per_step, start=1):
        for v, m, s, g, decay in zip(values, first, second, grads, weight_decays):
            g = g.double()
            v.mul_(1 - lr * decay)
            m.mul_(betas[0]).add_((1 - betas[0]) * g)
            s.mul_(betas[1]).add_((1 - betas[1]) * g * g)
            denom = (s / (1 - betas[1] ** step)).sqrt() + eps
            v.sub_(lr / (1 - betas[0] ** step) * m / denom)
    return values


def test_adamw_runs_the_fused_kernel_on_a_cpu_and_gives_the_adamw_update():
    """make_optimizer's AdamW is torch's fused one for CPU parameters (one pass per tensor, 4 ms
    against 15 ms a step for small.yaml's model): three steps of it equal AdamW computed in
    float64 within float32 rounding of each weight, with the norms' and biases' decay at 0."""
    torch.manual_seed(0)
    net = Net()
    optimizer = make_optimizer(net, name="adamw", lr=0.01, momentum=0.9, weight_decay=0.05, no_decay_norm_bias=True)
    assert optimizer.defaults["fused"] is True
    params = [p for group in optimizer.param_groups for p in group["params"]]
    decays = [group["weight_decay"] for group in optimizer.param_groups for _ in group["params"]]
    grads_per_step = [[torch.randn_like(p) for p in params] for _ in range(3)]
    expected = adamw_float64(params, grads_per_step, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decays=decays)
    for grads in grads_per_step:
        for p, g in zip(params, grads):
            p.grad = g.clone()
        optimizer.step()
    for p, exact in zip(params, expected):
        # float32 rounds each step's weight (u |w|) and its update (a few u of a step of order
        # lr = 0.01): 8 u (max |w| + 0.03) bounds three steps of it
        assert (p.detach().double() - exact).abs().max() <= 8 * 2.0 ** -24 * (exact.abs().max() + 0.03)


def test_build_optimizer_from_the_config():
    from yolact.build import build_model

    config = with_num_classes(load_config("shapes", ["train.optimizer=adamw", "train.no_decay_norm_bias=true",
                                                     "train.weight_decay=0.05", "train.lr=0.002"]), 3)
    model = build_model(config, pretrained=None)
    optimizer = build_optimizer(config, model)
    assert type(optimizer) is torch.optim.AdamW and [g["weight_decay"] for g in optimizer.param_groups] == [0.05, 0.0]
    assert optimizer.param_groups[0]["lr"] == 0.002
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
