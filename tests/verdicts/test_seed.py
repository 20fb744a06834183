"""The seed's scenario (LKML, 2023-08-18) on every variant, and the two controls.

The upstream fix is 1f69383b203e ("x86/fpu: Invalidate FPU state correctly on exec()").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fpufuzz import corpus, variant
from fpufuzz.render import explain
from fpufuzz.replay import expected_outcome, replay
from fpufuzz.state import INIT

SEED = Path(__file__).resolve().parents[2] / "corpus" / "exec+migrate-back+kthread.case"


@pytest.fixture(scope="module")
def seed():
    return corpus.load(SEED)


@pytest.mark.parametrize("name", variant.names())
def test_seed_case_on_every_variant(seed, name):
    v = variant.load(name)
    run = replay(seed, v)
    expected = expected_outcome(seed, v)
    assert expected is not None, f"the seed case should judge {name}"
    assert run.outcome == expected


def test_original_returns_to_user_with_the_pre_exec_registers(seed):
    run = replay(seed, variant.load("original"))
    failing = run.failing
    assert failing.number == len(seed.steps)  # only at the final return to user space
    finding = failing.violations[0]
    pre_exec = run.records[2].after.expect[2]  # what u0's program wrote at step 3
    assert (finding.expected, finding.actual) == (INIT, pre_exec)
    story = "\n".join(explain(run))
    assert "skipped the restore" in story and "stale" in story


@pytest.mark.parametrize("name", ["exec_invalidate_last_cpu", "exec_invalidate_both"])
def test_fixes_load_the_init_state(seed, name):
    run = replay(seed, variant.load(name))
    assert run.records[-1].after.cpus[0].regs == INIT


def test_always_restore_is_clean_although_its_bookkeeping_differs(seed):
    run = replay(seed, variant.load("always_restore"))
    assert run.outcome == "clean"
    assert any("xrstor" in label for label, _ in run.records[1].trace)


def test_always_valid_is_caught_at_the_first_return_to_user(seed):
    run = replay(seed, variant.load("always_valid"))
    assert run.outcome == "violates user-regs" and run.failing.number == 2
