"""Scale-out on Hypothesis's own machinery: campaigns share an example database; the corpus is the record."""

from __future__ import annotations

from hypothesis.database import DirectoryBasedExampleDatabase, MultiplexedDatabase, ReadOnlyDatabase

from fpufuzz import variant
from fpufuzz.fuzz import fuzz


def test_a_shared_database_replays_a_failure_found_elsewhere(tmp_path):
    shared = DirectoryBasedExampleDatabase(tmp_path / "shared")
    first = fuzz(variant.load("always_valid"), profile="dev", seed=1, database=shared)
    assert first.outcome == "violates user-regs" and any((tmp_path / "shared").iterdir())
    # another machine, reading the team's database read-only beside its own local one
    local = DirectoryBasedExampleDatabase(tmp_path / "local")
    second = fuzz(variant.load("always_valid"), profile="dev", seed=99,
                  database=MultiplexedDatabase(local, ReadOnlyDatabase(shared)))
    assert second.outcome == "violates user-regs" and second.campaign.examples_to_violation == 1


def test_each_variant_has_its_own_database_key(tmp_path):
    db = DirectoryBasedExampleDatabase(tmp_path / "db")
    fuzz(variant.load("always_valid"), profile="dev", seed=1, database=db)
    keys = {p.name for p in (tmp_path / "db").iterdir()}
    fuzz(variant.load("original"), profile="dev", seed=1, examples=20, database=db)
    assert {p.name for p in (tmp_path / "db").iterdir()} >= keys  # original did not reuse always_valid's key
    clean = fuzz(variant.load("exec_invalidate_last_cpu"), profile="dev", seed=1, examples=20, database=db)
    assert clean.outcome == "clean"  # a failure saved for another variant is not replayed here


def test_a_seed_draws_the_same_whatever_was_imported(tmp_path, monkeypatch):
    """Hypothesis mixes constants of every local module the process has loaded into its draws; a campaign holds
    them still (fpufuzz.determinism), so a ci verdict does not depend on which tests ran before it in a worker."""
    import importlib
    import sys

    from fpufuzz import determinism
    from fpufuzz.config import Config

    assert determinism.holds()  # if this Hypothesis moved the pool, fpufuzz.determinism needs a look
    v = variant.load("exec_invalidate_last_cpu")

    def campaign():
        result = fuzz(v, Config(), "ci", seed=5, examples=60)
        return result.outcome, result.campaign.examples, result.campaign.steps

    before = campaign()
    (tmp_path / "fpufuzz_other_constants.py").write_text(
        "CONSTANTS = [" + ", ".join(str(n) for n in range(0, 256, 3)) + "]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("fpufuzz_other_constants")
    try:
        assert campaign() == before
    finally:
        sys.modules.pop("fpufuzz_other_constants", None)
