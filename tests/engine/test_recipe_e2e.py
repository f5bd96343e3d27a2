"""small.yaml, train.time and train.ema_decay through the real entry point on a tiny dataset."""
import pytest
import torch

import train
from tests.engine.tiny_run import make_tiny_shapes, tiny_overrides
from yolact.engine.checkpoint import load_checkpoint
from yolact.engine.evaluation.model_loading import load_model_for_inference
from yolact.engine.train import launch

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
