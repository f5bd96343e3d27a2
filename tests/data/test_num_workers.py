"""data.num_workers: "auto" per device, ints as given, negative ones refused."""
import pytest

from yolact.build import build_num_workers
from yolact.config import load_config
from yolact.data import workers
from yolact.errors import YolactError


@pytest.mark.parametrize("cpus, world_size, expected", [(2, 1, 1), (16, 1, 4), (16, 2, 4), (8, 4, 1), (1, 1, 0)])
def test_auto_on_a_gpu_leaves_the_main_process_a_cpu(monkeypatch, cpus, world_size, expected):
    monkeypatch.setattr(workers, "available_cpus", lambda: cpus)
    assert workers.resolve_num_workers("auto", "cuda", processes_per_host=world_size) == expected


def test_auto_on_a_cpu_loads_in_the_training_process(monkeypatch):
    monkeypatch.setattr(workers, "available_cpus", lambda: 64)
    assert workers.resolve_num_workers("auto", "cpu") == 0


@pytest.mark.parametrize("device_type", ["cpu", "cuda"])
def test_a_number_is_kept(device_type):
    assert build_num_workers(load_config("coco", ["data.num_workers=3"]), device_type) == 3


def test_small_recipe_resolves_auto_per_device(monkeypatch):
    monkeypatch.setattr(workers, "available_cpus", lambda: 8)
    config = load_config("small")
    assert (build_num_workers(config, "cpu"), build_num_workers(config, "cuda")) == (0, 4)


def test_negative_is_refused_naming_the_key():
    with pytest.raises(YolactError, match=r'^data.num_workers must be >= 0 or "auto", got -1$'):
        build_num_workers(load_config("coco", ["data.num_workers=-1"]), "cpu")
