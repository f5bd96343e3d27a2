"""small.yaml, train.time and train.ema_decay through the real entry point on a tiny dataset."""
import pytest
import torch

import train
from tests.engine.tiny_run import make_tiny_shapes, tiny_overrides
from yolact.engine import performance_advice
from yolact.engine.checkpoint import load_checkpoint
from yolact.engine.evaluation.model_loading import load_model_for_inference
from yolact.engine.train import launch
from yolact.optimize.nchw_backward_conv import NCHWBackwardConv2d

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory):
    return make_tiny_shapes(tmp_path_factory.mktemp("shapes"))


def test_small_recipe_trains_a_few_iterations(shapes_root, tmp_path):
    assert train.main(["--config", "small", "--name", "small"] + tiny_overrides(shapes_root, tmp_path)) == 0
    last = load_checkpoint(tmp_path / "small" / "weights" / "last.pth")
    assert last["iteration"] == 4 and "hooks" not in last
    assert all("exp_avg_sq" in state for state in last["optimizer"]["state"].values())  # AdamW
    decays = sorted(group["weight_decay"] for group in last["optimizer"]["param_groups"])
    assert decays == [0.0, 0.05]  # norms and biases apart


def test_small_recipe_on_a_cpu_with_amx_trains_in_bf16_channels_last_and_says_so(shapes_root, tmp_path, monkeypatch):
    """On a CPU that reports AMX for bf16 (mocked flags) small.yaml's train.amp "auto" is bf16, and
    the trainer checks the gradients; the log says so. train.amp=off trains in fp32 and its log
    says bf16 is faster there. channels_last "auto" is on in both, with oneDNN's own backward (no
    NCHW-backward convolutions, which train.channels_last=true uses in fp32). The 4 bf16 steps of the 16-channel toy model (P6 and P7 1 x 1)
    end with finite weights: before yolact/modeling/fpn.py ran those convs in fp32, its
    gradients were NaN on CPUs with bf16 kernels."""
    monkeypatch.setattr(performance_advice, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}))
    monkeypatch.setattr(performance_advice, "onednn_isa_cap", lambda: None)
    made = []
    real_trainer = launch.Trainer

    def recording_trainer(**kwargs):
        made.append(kwargs)
        return real_trainer(**kwargs)

    monkeypatch.setattr(launch, "Trainer", recording_trainer)
    assert train.main(["--config", "small", "--name", "auto"]
                      + tiny_overrides(shapes_root, tmp_path, **{"train.amp": "auto", "train.val_interval": 0})) == 0
    assert train.main(["--config", "small", "--name", "fp32"]
                      + tiny_overrides(shapes_root, tmp_path, **{"train.max_iter": 1, "train.val_interval": 0})) == 0
    bf16, fp32 = made
    assert (bf16["amp"], bf16["channels_last"], bf16["scaler"], bf16["check_gradients"]) == ("bf16", True, None, True)
    assert (fp32["amp"], fp32["channels_last"], fp32["check_gradients"]) == ("off", True, False)
    for made_with in (bf16, fp32):
        stem = next(p for p in made_with["model"].parameters() if p.dim() == 4 and p.shape[-1] > 1)  # 1x1 are both
        assert stem.is_contiguous(memory_format=torch.channels_last) and not stem.is_contiguous()
        assert not any(isinstance(m, NCHWBackwardConv2d) for m in made_with["model"].modules())
    said_bf16 = "train.amp=auto: bf16 autocast on this CPU (amx_bf16, about 2x faster than fp32"
    said_faster = "this CPU has amx_bf16: train.amp=auto (bf16 autocast here) trains about 2x faster than fp32"
    auto_log, fp32_log = (tmp_path / name / "train.log" for name in ("auto", "fp32"))
    assert said_bf16 in auto_log.read_text() and said_faster not in auto_log.read_text()
    assert said_faster in fp32_log.read_text() and said_bf16 not in fp32_log.read_text()
    last = load_checkpoint(tmp_path / "auto" / "weights" / "last.pth")
    weights = [v for v in last["model"].values() if v.is_floating_point()]
    assert last["iteration"] == 4 and all(v.dtype == torch.float32 for v in weights)  # autocast: float32 weights
    assert all(torch.isfinite(v).all() for v in weights)


class StepClock:
    """Advances 0.4 s at each reading: the 3 s budget runs out within the run's 4 iterations on
    any machine, before the measured plan (which needs 13), so the hook adopts its stop plan."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.4
        return self.now


def test_time_budget_with_ema_plans_and_eval_loads_the_average(shapes_root, tmp_path, monkeypatch):
    real_builder = launch.build_time_budget_hook

    def with_step_clock(*args, **kwargs):
        hook = real_builder(*args, **kwargs)
        hook.clock = StepClock()
        return hook

    monkeypatch.setattr(launch, "build_time_budget_hook", with_step_clock)
    overrides = tiny_overrides(shapes_root, tmp_path, **{"train.time": 0.05, "train.ema_decay": 0.9,
                                                         "train.ema_tau": 0, "train.lr_schedule": "cosine",
                                                         "train.optimizer": "adamw",
                                                         "train.no_decay_norm_bias": "true"})
    assert train.main(["--config", "small", "--name", "timed"] + overrides) == 0
    weights = tmp_path / "timed" / "weights"
    last = load_checkpoint(weights / "last.pth")
    plan = last["hooks"]["TimeBudgetHook"]["plan"]
    assert last["iteration"] == plan["max_iter"] == last["hooks"]["EmaHook"]["updates"]
    assert list(plan["lr_steps"]) == [round(5 * plan["max_iter"] / 4)]  # lr_steps [5] of max_iter 4, scaled
    loaded = load_model_for_inference(weights / "last.pth", config_name=None, device=torch.device("cpu"))
    average = last["hooks"]["EmaHook"]["weights"]
    for name, value in loaded.model.state_dict().items():
        assert torch.equal(value, average[name]), name
    assert (weights / "best.pth").is_file()
