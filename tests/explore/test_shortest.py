"""The explorer's first slice: breadth-first search over the same model and oracle as the fuzzer.

The shortest counterexample on ``original`` is the seed's scenario (9 steps), and the fuzzer's minimized case
is exactly as short.
"""

from __future__ import annotations

from helpers import model_of

from fpufuzz import variant
from fpufuzz.explore import canonical, explore
from fpufuzz.fuzz import fuzz
from fpufuzz.state import Value

SMALL = dict(cpus=2, users=1, kthreads=0)


def test_shortest_counterexample_on_original_is_the_seeds_length():
    result = explore(model_of("original", **SMALL), max_depth=10)
    assert result.outcome == "violates user-regs"
    assert len(result.steps) == 9
    assert result.levels[:4] == [1, 2, 3, 12]  # pinned: a silent change to the model shows up here


def test_the_fixes_are_clean_to_the_same_depth():
    for name in ("exec_invalidate_last_cpu", "exec_invalidate_both"):
        result = explore(model_of(name, **SMALL), max_depth=9)
        assert result.outcome == "clean" and result.depth == 9 and not result.complete


def test_always_valid_shortest_is_two_steps():
    result = explore(model_of("always_valid", **SMALL), max_depth=4)
    assert [str(s) for s in result.steps] == ["schedule cpu=0 next=u0", "run task=u0 until=done"]


def test_the_fuzzers_minimized_case_is_as_short_as_the_shortest(fuzz_config):
    found = fuzz(variant.load("original"), fuzz_config, "ci")
    shortest = explore(model_of("original", **SMALL), max_depth=10)
    assert len(found.steps) == len(shortest.steps)


def test_canonical_form_renames_values_by_first_occurrence():
    world = model_of("original", **SMALL).initial()

    def shift(v):
        return Value(v.user + 10, v.sup + 10) if v is not None and v.user > 0 else v

    shifted = world._replace(fpus=tuple(f._replace(fpstate=shift(f.fpstate)) for f in world.fpus),
                             expect=tuple(shift(v) for v in world.expect), fresh=99)
    assert shifted != world and canonical(shifted) == canonical(world)
