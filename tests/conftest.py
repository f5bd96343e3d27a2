"""Shared test fixtures: the reference implementation's outputs (tests/reference_fixture).

Every test that takes ``reference`` runs once per fixture: ``compact`` (192 px, in the
repository, always present: missing files are an error) and ``full550`` (550 px,
../shared/fixtures/reference) where that folder is present; the pytest header says which ran.
With ``CI`` or ``YOLACT_REQUIRE_REFERENCE`` set in the environment, both are required: an absent
550 fixture fails its tests, and any skipped test that compares with the reference is a failure,
so that a skip never passes for a fidelity check.
"""
import logging
import os

import pytest

from tests.reference_fixture.cases import REFERENCE_CASE_NAMES, fixture_missing, load_case

_cases = {}


def reference_required() -> bool:
    """Whether skipping a reference test fails the run (CI, or YOLACT_REQUIRE_REFERENCE=1)."""
    flags = (os.environ.get("YOLACT_REQUIRE_REFERENCE", ""), os.environ.get("CI", ""))
    return any(flag.lower() not in ("", "0", "false", "no") for flag in flags)


def _case(name: str):
    missing = fixture_missing(name)
    if missing and name == "compact":
        pytest.fail(f"{missing}: the compact fixture is part of the repository")
    if missing:
        pytest.skip(missing)
    if name not in _cases:
        _cases[name] = load_case(name)
    return _cases[name]


def cases_to_run():
    """The fixtures the ``reference`` tests run on: compact always, 550 where present or required."""
    return [name for name in REFERENCE_CASE_NAMES
            if name == "compact" or reference_required() or not fixture_missing(name)]


def pytest_report_header(config):
    absent = [fixture_missing(name) for name in REFERENCE_CASE_NAMES if name not in cases_to_run()]
    return [f"reference fixtures: {', '.join(cases_to_run())}"] + [f"not run: {reason}" for reason in absent]


@pytest.fixture(scope="session", params=cases_to_run())
def reference(request):
    """A ``ReferenceCase``: the compact fixture, then the 550 one where it is present."""
    return _case(request.param)


@pytest.fixture(scope="session")
def compact_reference():
    """The compact (192 px) ``ReferenceCase`` alone, for tests that need one set of weights."""
    return _case("compact")


def compares_with_reference(item) -> bool:
    """Whether a test item compares with a reference fixture (it takes one of the two fixtures)."""
    return bool({"reference", "compact_reference"} & set(getattr(item, "fixturenames", ())))


def fail_skipped_reference_test(item, report, required: bool) -> None:
    """Turn the skip report of a reference test into a failure when ``required``."""
    if report.skipped and required and compares_with_reference(item):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"a reference test was skipped, which CI does not allow: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    fail_skipped_reference_test(item, outcome.get_result(), reference_required())


@pytest.fixture
def yolact_log(caplog):
    """caplog that sees the "yolact" logger even when an entry point turned its propagation off;
    the logger's handlers and level are restored afterwards."""
    logger = logging.getLogger("yolact")
    saved_handlers, saved_level = list(logger.handlers), logger.level
    logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    logger.setLevel(logging.INFO)
    yield caplog
    logger.handlers[:] = saved_handlers
    logger.setLevel(saved_level)
