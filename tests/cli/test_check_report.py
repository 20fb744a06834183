"""``fpufuzz check`` and ``fpufuzz report``, black-box: verdicts with their bounds, saving, the matrix."""

from __future__ import annotations

import json

import pytest

from fpufuzz import corpus
from fpufuzz.cli import main
from fpufuzz.replay import replay
from fpufuzz import variant


def test_check_prints_the_shortest_counterexample_and_saves_it_once(tmp_path, capsys):
    args = ["check", "--variant", "original", "--save", "--corpus", str(tmp_path), "--jobs", "1"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "violates user-regs: shortest counterexample 9 steps on 2 CPUs × 1 user task + 0 kernel threads" in out
    saved = list(tmp_path.glob("*.case"))
    assert len(saved) == 1
    case = corpus.load(saved[0])
    assert len(case.steps) == 9 and replay(case, variant.load("original")).outcome == "violates user-regs"
    assert case.expect["exec_invalidate_last_cpu"] == "clean"
    assert main(args) == 1
    assert "already in the corpus" in capsys.readouterr().out
    assert list(tmp_path.glob("*.case")) == saved


def test_check_states_a_complete_clean_verdict(capsys):
    assert main(["check", "--variant", "exec_invalidate_last_cpu", "--jobs", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ("no violation: all 2,418 reachable states of 2 CPUs × 1 user task + 0 kernel threads explored "
            "(complete; depth 16") in out


def test_check_states_its_bound_when_it_stops_early(capsys):
    assert main(["check", "--variant", "exec_invalidate_both", "--depth", "6", "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert (result["outcome"], result["complete"], result["stopped"], result["depth"]) == ("clean", False, "depth", 6)
    assert result["states"] == sum(result["levels"]) and result["bytes_per_state"] > 0


def test_check_ops_restricts_what_the_world_may_do(capsys):
    """Without exec there is no exec bug: the restricted search is complete and clean."""
    assert main(["check", "--variant", "original", "--ops", "user_write,syscall:getpid,run,schedule",
                 "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["outcome"] == "clean" and result["complete"]


def test_check_compares_with_expect(capsys):
    assert main(["check", "--variant", "always_valid", "--variant", "always_restore", "--check", "--jobs", "1"]) == 0
    assert main(["check", "--variant", "always_valid", "--ops", "user_write,run", "--check"]) == 1


@pytest.mark.parametrize("args, message", [
    (["check", "--ops", "forks"], "--ops: unknown operation 'forks'"),
    (["check", "--cpus", "9"], "cpus=9: choose 1 to 4"),
    (["check", "--variant", "nosuch"], "nosuch"),
    (["check", "--depth", "-1"], "--depth must be at least 0"),
])
def test_check_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_report_markdown_matrix(capsys):
    assert main(["report", "--format", "markdown", "--no-fuzz", "--variant", "original",
                 "--variant", "exec_invalidate_last_cpu"]) == 0
    out = capsys.readouterr().out
    assert "| variant | expect | `exec+migrate-back+kthread` |" in out
    assert "| `original` | violates user-regs | ✗ user-regs |" in out
    assert "| `exec_invalidate_last_cpu` | clean | clean |" in out
    assert "`exec_invalidate_last_cpu`: complete; depth 16" in out


def test_report_marks_a_surprise_and_exits_1(tmp_path, capsys):
    text = corpus.render(corpus.load("corpus/exec+migrate-back+kthread.case"))
    (tmp_path / "wrong.case").write_text(text.replace("expect: original violates user-regs", "expect: original clean"))
    assert main(["report", "--format", "json", "--no-fuzz", "--no-explore", "--corpus", str(tmp_path),
                 "--variant", "original"]) == 1
    [row] = json.loads(capsys.readouterr().out)
    [cell] = row["cells"].values()
    assert cell == {"observed": "violates user-regs", "expected": "clean", "ok": False, "detail": ""}
