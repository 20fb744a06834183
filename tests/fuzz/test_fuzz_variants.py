"""Fuzz every discovered variant under the derandomized ``ci`` profile, on the whole machine (every operation family
on: ``--fuzz-config``'s default), and hold it to its EXPECT.

A variant expected to violate passes only if the fuzzer finds that violation within the budget (this is how the
fuzzer itself is tested); a variant expected clean fails on any violation, when a reachability property it can
reach was never reached, and when a kind of step its machine has was never taken. A failure prints the minimized
case in corpus format and writes it to the test's artifact folder.
"""

from __future__ import annotations

import pytest
from helpers import assert_finds_its_bug, case_report

from fpufuzz import corpus, variant
from fpufuzz.fuzz import fuzz as run_fuzz

_RESULTS: dict = {}


def fuzz(v, config, profile):
    """Campaigns are deterministic under ci; tests that ask for the same one share it."""
    key = (v.name, config, profile)
    if key not in _RESULTS:
        _RESULTS[key] = run_fuzz(v, config, profile)
    return _RESULTS[key]


@pytest.mark.parametrize("name", variant.names())
def test_fuzz_variant(name, fuzz_profile, fuzz_config, artifacts):
    v = variant.load(name)
    result = fuzz(v, fuzz_config.with_families(v.families), fuzz_profile)
    report = case_report(result, artifacts)
    if v.expect == "clean":
        assert result.outcome == "clean", f"{name} is expected clean but {result.message}{report}"
        assert not result.missing, (f"{name}: a clean verdict that never reached {sorted(result.missing)} is not "
                                    "evidence; declare UNREACHABLE with a reason if the variant cannot reach them")
        assert not result.undrawn, f"{name}: the campaign never took a step of kind {sorted(result.undrawn)}"
    else:
        assert_finds_its_bug(v, result, fuzz_profile, report)


def test_ci_profile_is_deterministic(fuzz_config):
    first = run_fuzz(variant.load("always_valid"), fuzz_config, "ci")
    second = run_fuzz(variant.load("always_valid"), fuzz_config, "ci")
    assert corpus.render(first.case) == corpus.render(second.case)
    assert first.campaign.examples == second.campaign.examples
