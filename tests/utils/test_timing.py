"""The timing helpers: warm-up calls are not timed, interleaved rounds call each function in turn."""
from yolact.utils.timing import time_interleaved_median_ms, time_median_ms


def test_time_median_ms_calls_warmup_plus_repeats():
    calls = []
    assert time_median_ms(lambda: calls.append(1), repeats=3, warmup=2) >= 0
    assert len(calls) == 5


def test_interleaved_rounds_alternate_and_return_one_median_per_function():
    calls = []
    medians = time_interleaved_median_ms({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                                         repeats=3, warmup=1)
    assert set(medians) == {"a", "b"} and all(ms >= 0 for ms in medians.values())
    assert calls == ["a", "b"] + ["a", "b"] * 3  # warm-up of each, then one call of each per round
