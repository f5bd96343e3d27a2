"""Per-rank RNG state: a round trip restores this process's own generators only."""
import torch

from yolact.utils.rng_state import capture_rank_rng_state, restore_rank_rng_state


def test_cpu_round_trip_replays_the_same_draws():
    torch.manual_seed(5)
    state = capture_rank_rng_state(torch.device("cpu"))
    assert set(state) == {"cpu"}
    expected = torch.rand(4)
    torch.manual_seed(123)
    assert restore_rank_rng_state(state, torch.device("cpu")) == []
    assert torch.equal(torch.rand(4), expected)


def test_cuda_part_touches_only_the_given_device(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: calls.append(("get", device)) or torch.zeros(8))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda value, device: calls.append(("set", device)))
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: (_ for _ in ()).throw(AssertionError("all devices")))
    device = torch.device("cuda", 1)
    state = capture_rank_rng_state(device)
    assert set(state) == {"cpu", "cuda"}
    assert restore_rank_rng_state(state, device) == []
    assert calls == [("get", device), ("set", device)]


def test_missing_parts_are_notes_not_errors():
    cpu_state = capture_rank_rng_state(torch.device("cpu"))
    notes = restore_rank_rng_state(cpu_state, torch.device("cuda", 0))  # saved on the CPU, resumed on a GPU
    assert len(notes) == 1 and "cuda:0 keeps its seed" in notes[0]
    assert restore_rank_rng_state(None, torch.device("cpu")) == [
        "no RNG state saved for this rank: the generators keep their seed"]
