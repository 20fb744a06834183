"""``fpufuzz mutate``, black-box: bad input is one line and exit 2; a small run prints the score and its JSON."""

from __future__ import annotations

import json
import subprocess
import sys


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
