"""Every corpus case on every variant, against the case's own expectations (litmus style: the expected verdict
is data in the case, the harness only compares)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fpufuzz import corpus, variant
from fpufuzz.config import WHOLE, Config
from fpufuzz.ops import kind, kinds
from fpufuzz.replay import expected_outcome, replay

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
CASES = corpus.discover(CORPUS)
PAIRS = [(path, name) for path in CASES for name in variant.names()]


def test_the_corpus_is_not_empty():
    assert len(CASES) >= 1


@pytest.mark.parametrize("path, name", PAIRS, ids=[f"{p.stem}-{n}" for p, n in PAIRS])
def test_case_verdict(path, name):
    case = corpus.load(path)
    v = variant.load(name)
    expected = expected_outcome(case, v)
    if expected is None:
        pytest.skip(f"{case.name} does not judge {name} (expected buggy, not listed)")
    assert replay(case, v).outcome == expected


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case_is_in_canonical_form(path):
    """Cases are written by ``corpus.render``; a hand edit that drifts from it is caught here."""
    case = corpus.load(path)
    assert corpus.render(case) == path.read_text(encoding="utf-8")
    assert case.model and case.provenance, "every shipped case records its model version and provenance"


def test_every_operation_and_every_kernel_path_it_selects_appears_in_a_case():
    """Issue 4: a corpus case exercises each operation, and each value of the arguments that choose which kernel
    path runs (the syscall, the interrupt's and kernel thread's work, the ptrace request, the VM exit, the frame's
    page), so every path has a replayable example that every variant is judged on."""
    seen = {kind(step) for path in CASES for step in corpus.load(path).steps}
    assert not kinds(Config(**WHOLE)) - seen, f"kinds of step in no case: {sorted(kinds(Config(**WHOLE)) - seen)}"
