"""The fpufuzz command, black-box: exit codes 0 clean / 1 violation / 2 bad input, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fpufuzz.cli import main

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "corpus" / "exec+migrate-back+kthread.case")


def fpufuzz(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fpufuzz", *args], capture_output=True, text=True, cwd=ROOT)


def test_variants_lists_the_five(capsys):
    assert main(["variants"]) == 0
    out = capsys.readouterr().out
    for name in ("original", "exec_invalidate_last_cpu", "exec_invalidate_both", "always_restore", "always_valid"):
        assert name in out


def test_variants_diff_shows_the_patch(capsys):
    assert main(["variants", "--diff", "exec_invalidate_last_cpu"]) == 0
    out = capsys.readouterr().out
    assert "-    k.fpu__drop(fpu)" in out and "+    k.__fpu_invalidate_fpregs_state(fpu)" in out


@pytest.mark.parametrize("name, code", [("original", 1), ("always_valid", 1), ("exec_invalidate_last_cpu", 0),
                                        ("exec_invalidate_both", 0), ("always_restore", 0)])
def test_replay_exit_codes(name, code, capsys):
    assert main(["replay", SEED, "--variant", name]) == code


def test_replay_explain_narrates(capsys):
    main(["replay", SEED, "--variant", "original", "--explain"])
    out = capsys.readouterr().out
    assert "10. run task=u0 until=done" in out and "skipped the restore" in out


def test_replay_json(capsys):
    main(["replay", SEED, "--variant", "original", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["outcome"] == "violates user-regs" and len(data["steps"]) == 10
    assert data["steps"][-1]["findings"][0]["name"] == "user-regs"


def test_replay_check_passes_on_the_shipped_corpus(capsys):
    assert main(["replay", "--check"]) == 0
    assert "all as expected" in capsys.readouterr().out


def test_replay_check_reports_a_mismatch(tmp_path, capsys):
    text = Path(SEED).read_text().replace("expect: original violates user-regs", "expect: original clean")
    case = tmp_path / "wrong.case"
    case.write_text(text)
    assert main(["replay", "--check", str(case)]) == 1
    assert "expected clean, observed violates user-regs" in capsys.readouterr().out


def test_a_user_variant_file_runs(tmp_path, capsys):
    patch = tmp_path / "my_patch.py"
    patch.write_text('"""x86/fpu: drop fpu__drop from exec\n\nAuthor: A <a@b>\nDate: 2026-11-26\nLink: x\n"""\n'
                     "def fpu__drop(k, fpu):\n    k.__cpu_invalidate_fpregs_state()\n"
                     "    k.__fpu_invalidate_fpregs_state(fpu)\n")
    assert main(["replay", SEED, "--variant", str(patch)]) == 0


@pytest.mark.parametrize("args, message", [
    (["replay", "missing.case", "--variant", "original"], "missing.case: no such case file"),
    (["replay", SEED, "--variant", "nosuch"], "no variant named 'nosuch'"),
    (["replay"], "replay takes one CASE file"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = fpufuzz(*args)
    assert result.returncode == 2
    assert result.stderr.strip() == f"fpufuzz: error: {result.stderr.strip().removeprefix('fpufuzz: error: ')}"
    assert message in result.stderr and "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


def test_broken_case_file(tmp_path):
    case = tmp_path / "broken.case"
    case.write_text(Path(SEED).read_text().replace("run task=u0 until=done", "run tsk=u0", 1))
    result = fpufuzz("replay", str(case), "--variant", "original")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = _line_of(case, "run tsk=u0")
    assert f"{case}:{line}: run takes task= until=; got 'tsk=u0'" in result.stderr


def test_impossible_step(tmp_path):
    case = tmp_path / "impossible.case"
    case.write_text(Path(SEED).read_text().replace("schedule cpu=1 next=idle1", "user_write task=u0", 1))
    result = fpufuzz("replay", str(case), "--variant", "original")
    line = next(n for n, text in enumerate(case.read_text().splitlines(), 1)
                if text.lstrip().startswith("user_write task=u0") and "schedule cpu=1 next=idle1" in
                Path(SEED).read_text().splitlines()[n - 1])
    assert result.returncode == 2 and f"{case}:{line}: user_write task=u0: u0 is in the kernel" in result.stderr


def _line_of(path, text) -> int:
    """The file line of the first line containing ``text``: expect lines added by new variants move the steps."""
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_variant_that_fails_to_import(tmp_path):
    bad = tmp_path / "bad_patch.py"
    bad.write_text("import no_such_module\n")
    result = fpufuzz("replay", SEED, "--variant", str(bad))
    assert result.returncode == 2 and "bad_patch" in result.stderr and "ModuleNotFoundError" in result.stderr
    assert "Traceback" not in result.stderr


def test_fuzz_finds_saves_and_never_duplicates(tmp_path, capsys):
    args = ["fuzz", "--variant", "always_valid", "--save", "--corpus", str(tmp_path), "--seed", "1"]
    assert main(args) == 1
    saved = list(tmp_path.glob("*.case"))
    assert len(saved) == 1 and "violates user-regs" in saved[0].read_text()
    assert main(args) == 1  # the same case again: recognized, not written twice
    assert list(tmp_path.glob("*.case")) == saved
    assert "already in the corpus" in capsys.readouterr().out


def test_fuzz_check_and_json(capsys):
    assert main(["fuzz", "--variant", "always_valid", "--check", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["outcome"] == "violates user-regs" and data[0]["as_expected"]
    assert data[0]["case"].startswith("fpufuzz-case 1")
    # the shortest road to always_valid's bug is 2 steps; the campaign ran on (Hypothesis replays the failure)
    assert data[0]["examples_to_violation"] == 1 and 2 <= data[0]["steps_to_violation"] <= data[0]["steps"]


def test_fuzz_bad_profile_is_bad_input():
    result = fpufuzz("fuzz", "--profile", "huge")
    assert result.returncode == 2 and "invalid choice: 'huge'" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["check", "--preempt-rt", "--preempt", "none"], "preempt_rt=yes with preempt=none: PREEMPT_RT is fully"),
    (["fuzz", "--preempt", "lazy"], "argument --preempt: invalid choice: 'lazy'"),
    (["report", "--xrstor-fault", "never"], "argument --xrstor-fault: invalid choice: 'never'"),
])
def test_kernel_configuration_options_are_checked(args, message):
    result = fpufuzz(*args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_check_names_the_configuration_it_explored(capsys):
    assert main(["check", "--variant", "original", "--preempt", "none", "--fnsave", "--jobs", "1", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)[0]
    assert data["config"] == "cpus=2 users=1 kthreads=0 preempt=none fnsave=yes"
    assert len(data["counterexample"]) == 9
