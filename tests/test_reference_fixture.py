"""The reference fixtures themselves: the compact one is in the repository and its weights are
rebuilt bit for bit; no reference test can be skipped unnoticed."""
import hashlib
import subprocess
from types import SimpleNamespace


from tests import conftest
from tests.conftest import cases_to_run, fail_skipped_reference_test, reference_required
from tests.reference_fixture.cases import COMPACT_DIR, REPO_ROOT, fixture_missing, read_state_keys
from tests.reference_fixture.weights import make_reference_state, state_sha256

_COMPACT_FILES = ("yolact_tiny_dump.pth", "fastnms.pth", "state_keys.txt", "README.md")


def test_compact_fixture_is_in_the_repository():
    """Its absence would fail every ``compact`` reference test, not skip it; this says why."""
    assert fixture_missing("compact") is None
    if (REPO_ROOT / ".git").exists():  # a checkout: the files must be tracked, not just present
        tracked = subprocess.run(["git", "ls-files", str(COMPACT_DIR)], cwd=REPO_ROOT, capture_output=True,
                                 text=True, check=True).stdout.split()
        assert sorted(path.rsplit("/", 1)[-1] for path in tracked) == sorted(_COMPACT_FILES)


def test_recipe_rebuilds_the_weights_from_state_keys_alone(compact_reference):
    weights = compact_reference.dump["weights"]
    keys = read_state_keys(COMPACT_DIR / "state_keys.txt")
    stored_keys = [(name, list(shape)) for name, shape, _ in weights["keys"]]
    assert [(name, shape) for name, shape, _ in keys] == stored_keys
    state = make_reference_state(keys, weights["seed"])
    assert len(state) == 138 and sum(t.numel() for t in state.values()) == 8_843_936
    for name, tensor in state.items():  # per tensor: names the first one that diverges
        digest = hashlib.sha256(tensor.contiguous().reshape(-1).numpy().tobytes()).hexdigest()
        assert digest[:16] == weights["tensor_sha256_16"][name], name
    # the recipe's ranges: BatchNorm far from the identity, each class kernel sums to zero
    assert 0.5 <= state["backbone.bn1.running_var"].min() and state["backbone.bn1.running_var"].max() < 1.5
    class_kernels = state["prediction_layers.0.conf_layer.weight"].double().sum(dim=(2, 3))
    assert class_kernels.abs().max() < 1e-5
    assert state_sha256(state) == weights["sha256"]


def test_the_550_fixture_is_present_where_reference_tests_are_required():
    if reference_required():
        assert fixture_missing("full550") is None


def _skip_report():
    return SimpleNamespace(skipped=True, outcome="skipped", longrepr=("f.py", 1, "Skipped: fixture absent"))


def test_a_skipped_reference_test_fails_when_required():
    item = SimpleNamespace(fixturenames=["reference", "tmp_path"])
    report = _skip_report()
    fail_skipped_reference_test(item, report, required=True)
    assert report.outcome == "failed" and "fixture absent" in report.longrepr
    report = _skip_report()
    fail_skipped_reference_test(item, report, required=False)
    assert report.outcome == "skipped"
    other = _skip_report()
    fail_skipped_reference_test(SimpleNamespace(fixturenames=["tmp_path"]), other, required=True)
    assert other.outcome == "skipped"


def test_reference_required_reads_ci_and_the_yolact_switch(monkeypatch):
    for ci, switch, expected in [("true", "", True), ("", "1", True), ("", "", False), ("false", "0", False)]:
        monkeypatch.setenv("CI", ci)
        monkeypatch.setenv("YOLACT_REQUIRE_REFERENCE", switch)
        assert reference_required() is expected


def test_compact_always_runs_and_the_550_fixture_whenever_required(monkeypatch):
    monkeypatch.setattr(conftest, "fixture_missing", lambda name: f"{name} absent")
    monkeypatch.setenv("CI", "")
    monkeypatch.setenv("YOLACT_REQUIRE_REFERENCE", "")
    assert cases_to_run() == ["compact"]  # a fresh clone without ../shared: nothing skipped
    monkeypatch.setenv("CI", "true")
    assert cases_to_run() == ["compact", "full550"]  # CI: the absent fixture fails its tests
