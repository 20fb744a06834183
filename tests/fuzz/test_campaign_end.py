"""A campaign ends at its first violation. Hypothesis's target phase, once it has a failure, hill-climbs on to
the end of its pass past the example budget; fpufuzz ends the search at the next example instead
(``fpufuzz.machine.CampaignOver``; docs/fuzzing.md, 'After the first violation')."""

from __future__ import annotations

from fpufuzz import variant
from fpufuzz.fuzz import fuzz

# On this seed and budget `ci` finds original's bug in its target phase, which starts at half the budget. Without
# the early end the campaign ran 3,911 examples (102 s) on a budget of 60.
SEED, BUDGET = 5, 60


def test_a_violation_found_in_the_target_phase_ends_the_search():
    result = fuzz(variant.load("original"), seed=SEED, examples=BUDGET)
    campaign = result.campaign
    assert result.outcome == "violates user-regs" and len(result.steps) == 9
    assert campaign.examples_to_violation > BUDGET // 2, "found before the target phase: pick another seed"
    assert campaign.examples == campaign.examples_to_violation


def test_a_violation_found_while_generating_is_reported_as_before():
    result = fuzz(variant.load("always_valid"), seed=1, examples=BUDGET)
    # Hypothesis stops generating at a failure by itself and replays it to report it: one example more
    assert result.outcome == "violates user-regs"
    assert result.campaign.examples == result.campaign.examples_to_violation + 1
