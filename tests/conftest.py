"""Shared fixtures: a model of the baseline, and worlds in named situations built through real steps."""

from __future__ import annotations

import pytest
from helpers import model_of, run


@pytest.fixture
def baseline():
    return model_of("original")


@pytest.fixture
def u0_in_user(baseline):
    """u0 running in user mode on CPU0 with live registers (owner u0, last_cpu 0, TIF clear)."""
    world, findings = run(baseline, "schedule cpu=0 next=u0", "run task=u0 until=done")
    assert not findings
    return world


def pytest_addoption(parser):
    group = parser.getgroup("fpufuzz")
    group.addoption("--fuzz-profile", default="ci", choices=("ci", "dev", "deep"),
                    help="Hypothesis profile for the fuzz tests (default: ci, derandomized)")
    group.addoption("--fuzz-config",
                    default="cpus=2 users=2 kthreads=1 lifecycle=yes signals=yes kvm=yes softirq=yes ptrace=yes",
                    help="machine for the fuzz tests, as in a case header (default: every operation family on); "
                         "a variant adds the operation families it declares (FAMILIES)")
    group.addoption("--fuzz-artifacts", default=None, help="folder for minimized failing cases")


@pytest.fixture
def fuzz_profile(request) -> str:
    return request.config.getoption("--fuzz-profile")


@pytest.fixture
def fuzz_config(request):
    from fpufuzz.corpus import CorpusFormatError, parse_config

    try:
        return parse_config(request.config.getoption("--fuzz-config"), "--fuzz-config")
    except CorpusFormatError as e:  # a bad option: one line, not a traceback per test
        pytest.exit(str(e), returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture
def artifacts(request, tmp_path):
    from pathlib import Path

    folder = request.config.getoption("--fuzz-artifacts")
    return Path(folder) if folder else tmp_path
