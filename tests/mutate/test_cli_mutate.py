"""``fpufuzz mutate``, black-box: bad input is one line and exit 2; a small run prints the score and its JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fpufuzz import corpus
from fpufuzz.config import Config
from fpufuzz.errors import FpufuzzError


def fpufuzz(*args):
    return subprocess.run([sys.executable, "-m", "fpufuzz", "mutate", *args], capture_output=True, text=True)


def test_unknown_function_is_one_line_and_exit_2():
    r = fpufuzz("--function", "fpu_reset_fpreg")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and "fpu_reset_fpreg" in r.stderr and "did you mean" in r.stderr


def test_bad_min_score_is_refused():
    r = fpufuzz("--min-score", "2")
    assert r.returncode == 2 and "--min-score" in r.stderr


def test_list_names_mutants_without_running():
    r = fpufuzz("--function", "switch_fpu_finish", "--list")
    assert r.returncode == 0
    assert [line.split(":")[0] for line in r.stdout.split()] == ["switch_fpu_finish"] * 2


def test_json_run_scores_a_small_set():
    r = fpufuzz("--function", "switch_fpu_finish", "--json", "--jobs", "1", "--min-score", "1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["counts"]["violating"] == out["violating"] == 2 and out["killed"] == 2 and out["score"] == 1.0
    assert out["fuzzer_machine"] == "cpus=2 users=2 kthreads=1 lifecycle=yes signals=yes kvm=yes softirq=yes ptrace=yes"
    for m in out["mutants"]:
        assert m["fuzzer"]["killed"] and m["counterexample"] and m["fuzzer"]["case"]
        assert m["explorer_machine"] == out["explorer_machines"][0] == "cpus=2 users=1 kthreads=0"


def test_a_run_s_classifications_read_back_as_they_were(tmp_path):
    """``bench_mutate.py --classified`` fuzzes under another profile from an earlier run's verdicts: each record
    reads back to the classification it was written from."""
    from fpufuzz.cli_mutate import load_classifications, mutant_json
    from fpufuzz.mutscore import Classification, Judged

    steps = [corpus.parse_step("schedule cpu=0 next=u0"), corpus.parse_step("run task=u0 until=done")]
    written = [Classification("violating", Config(cpus=1, users=1, kthreads=0, signals=True), "sigframe", steps,
                              ["handler-entered"], 120, 1.5),
               Classification("unknown", Config(cpus=1, users=2, kthreads=0, ptrace=True), states=9, seconds=2.0,
                              stopped="time"),
               Classification("unexercised")]
    path = tmp_path / "run.jsonl"
    path.write_text("".join(json.dumps({"profile": "ci", **mutant_json(Judged(f"f:{n}:delete", "f", n, "delete", c),
                                                                       None)}) + "\n"
                            for n, c in enumerate(written)))
    assert load_classifications(str(path)) == {f"f:{n}:delete": c for n, c in enumerate(written)}


@pytest.mark.parametrize("line, field", [('{"mutant": "f:1:delete"}', "'class'"),
                                         ('{"mutant": "f:1:delete", "class": "killed"}', "class"),
                                         ('{"mutant": "f:1:delete", "class": "violating", "explorer_machine": '
                                          '"cpus=9"}', "explorer_machine"),
                                         ('{"class": "violating"}', "mutant"),
                                         ("not json", "not JSON")])
def test_a_bad_classified_record_names_the_file_line_and_field(tmp_path, line, field):
    from fpufuzz.cli_mutate import load_classifications

    path = tmp_path / "run.jsonl"
    path.write_text("\n" + line + "\n")
    with pytest.raises(FpufuzzError) as e:
        load_classifications(str(path))
    assert str(e.value).startswith(f"{path}:2: ") and field in str(e.value) and "\n" not in str(e.value)


def test_a_saved_verdict_is_used_only_for_the_mutant_it_was_made_on(tmp_path):
    """A mutant is named function:line:mutation; when the base's lines move, a name stands for another mutant.
    ``--classified`` then takes a record only if its source digest is today's mutant's, so an old counterexample is
    never pinned on a new mutant (it was: a blind-spot report replayed one and stopped with IllegalStep)."""
    from fpufuzz import mutate
    from fpufuzz.cli_mutate import load_classifications, mutant_json
    from fpufuzz.mutscore import Classification, Judged

    first, second = mutate.generate(["fpu__drop"])[:2]
    c = Classification("unexercised")
    path = tmp_path / "run.jsonl"
    records = [mutant_json(Judged(first.name, first.function, first.line, first.mutation, c), None, first.digest),
               mutant_json(Judged(second.name, second.function, second.line, second.mutation, c), None,
                           first.digest),  # the name now stands for another mutant
               mutant_json(Judged(first.name + "x", first.function, first.line, first.mutation, c), None)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert set(load_classifications(str(path), [first, second])) == {first.name}
    assert len(load_classifications(str(path))) == 3  # without mutants to match: every record, as written
    assert first.digest != second.digest
