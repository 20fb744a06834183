"""The mutant generator (issue 6): deterministic, named by function, line and mutation, one mutant per distinct
source, working from whatever functions the base variant has."""

from __future__ import annotations

import inspect
import re

import pytest

from fpufuzz import mutate, variant
from fpufuzz.errors import FpufuzzError

NAME = re.compile(r"^(?P<function>\w+):(?P<line>\d+):(?P<mutation>[\w-]+)(#\d+)?$")


@pytest.fixture(scope="module")
def mutants():
    return mutate.generate()


def line_of(function: str, text: str) -> int:
    """The file line of the first source line of ``function`` (in the base) that contains ``text``."""
    lines, first = inspect.getsourcelines(mutate.base_variant().functions[function])
    return first + next(i for i, line in enumerate(lines) if text in line)


def test_generation_is_deterministic(mutants):
    again = mutate.generate()
    assert [(m.name, m.source) for m in again] == [(m.name, m.source) for m in mutants]


def test_names_are_unique_and_point_into_the_function(mutants):
    assert len({m.name for m in mutants}) == len(mutants)
    for m in mutants:
        match = NAME.match(m.name)
        assert match, m.name
        lines, first = inspect.getsourcelines(mutate.base_variant().functions[m.function])
        assert first <= m.line < first + len(lines), m.name
        assert m.variant.name == m.name and m.variant.expect == "unknown"
        assert list(m.variant.overrides) == [m.function]


def test_equivalent_syntax_is_generated_once(mutants):
    by_function: dict[str, set[str]] = {}
    for m in mutants:
        sources = by_function.setdefault(m.function, {inspect.getsource(mutate.base_variant().functions[m.function])})
        assert m.source not in sources, m.name
        sources.add(m.source)


def test_the_invalidation_operators(mutants):
    line = line_of("fpu_reset_fpregs", "__fpu_invalidate_fpregs_state")
    names = {m.name: m for m in mutants}
    dropped = names[f"fpu_reset_fpregs:{line}:drop-invalidation"]
    assert "invalidate" not in dropped.source
    swapped = names[f"fpu_reset_fpregs:{line}:swap-invalidation"]
    assert "__cpu_invalidate_fpregs_state()" in swapped.source and "__fpu_invalidate" not in swapped.source


def test_flag_lock_and_read_operators_exist(mutants):
    kinds = {m.mutation for m in mutants}
    assert {"set-to-clear", "clear-to-set", "before-fpregs_lock", "after-fpregs_unlock", "read-early",
            "negate-condition", "condition-true", "condition-false", "and-to-or"} <= kinds


def test_mutating_leaves_the_base_untouched(mutants):
    base = mutate.base_variant()
    assert base.functions["fpu_reset_fpregs"] is variant.load(mutate.BASE).module.fpu_reset_fpregs
    assert "__fpu_invalidate_fpregs_state" in inspect.getsource(base.functions["fpu_reset_fpregs"])


def test_unknown_function_is_refused_by_name():
    with pytest.raises(FpufuzzError, match="fpu_reset_fpreg.*did you mean fpu_reset_fpregs"):
        mutate.generate(["fpu_reset_fpreg"])


def test_new_functions_of_a_base_are_mutated_too(tmp_path):
    """The model grows (fork, signals...): the generator works from whatever functions the base has."""
    path = tmp_path / "grown.py"
    path.write_text('"""x86/fpu: a grown model\n\nAuthor: t\nDate: 2026-01-01\nCommit: 0\n"""\n'
                    "from fpufuzz import new\nfrom fpufuzz.runtime import TIF_NEED_FPU_LOAD\n\n\n"
                    "@new\ndef switch_fpu(k, old):\n    k.set_tsk_thread_flag(old, TIF_NEED_FPU_LOAD)\n")
    grown = variant.load_file(str(path))
    names = [m.name for m in mutate.generate(["switch_fpu"], base=grown)]
    assert names == ["switch_fpu:13:set-to-clear", "switch_fpu:13:delete"]


def test_written_mutants_load_as_the_same_variant(tmp_path, mutants):
    """``--write``: a mutant written as a module loads through the ordinary loader, with the same function."""
    m = next(m for m in mutants if m.function == "__switch_to" and m.mutation == "read-early")
    loaded = variant.load_file(str(mutate.write(m, tmp_path)))
    assert loaded.base == mutate.BASE and list(loaded.overrides) == ["__switch_to"]
    assert inspect.getsource(loaded.overrides["__switch_to"]).strip() == m.source.strip()


def test_mutants_are_never_written_into_variants():
    import variants as package

    with pytest.raises(FpufuzzError, match="variants package"):
        mutate.write(mutate.generate(["switch_fpu_finish"])[0], package.__path__[0])
