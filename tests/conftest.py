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
