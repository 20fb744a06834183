"""A known bug counts as found at whichever observation point of stale registers a campaign meets first
(fpufuzz.fuzz.same_bug): the fuzz tests of the buggy variants rest on it."""

from __future__ import annotations

from fpufuzz.fuzz import same_bug


def test_stale_registers_met_at_any_observation_point_are_the_same_bug_and_nothing_else_is():
    points = ("user-regs", "sigframe", "guest-regs", "regset")
    assert all(same_bug(f"violates {a}", f"violates {b}") for a in points for b in points)
    for other in ("kernel-fpu-data", "non-interference"):
        assert not same_bug(f"violates {other}", "violates user-regs")
        assert not same_bug("violates regset", f"violates {other}")
    assert not same_bug("clean", "violates regset")
