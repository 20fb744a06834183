"""The corpus format: parse, render, atomic never-overwriting saves, and one clear line for every mistake."""

from __future__ import annotations

import pytest

from fpufuzz import CorpusFormatError
from fpufuzz.corpus import discover, load, parse, render, save

GOOD = """fpufuzz-case 1
name: tiny
summary: a task returns to user space
  and sees its own registers
config: cpus=2 users=1 kthreads=0
expect: original clean

steps:
  schedule cpu=0 next=u0        # first
  run task=u0 until="exit_to_user_mode_loop: cond_resched"
  # about the next step
  run task=u0 until=done
"""


def test_parse_reads_every_field():
    case = parse(GOOD)
    assert case.name == "tiny" and case.summary == "a task returns to user space and sees its own registers"
    assert case.config.users == 1 and case.config.kthreads == 0
    assert [str(s) for s in case.steps] == [
        "schedule cpu=0 next=u0", "run task=u0 until='exit_to_user_mode_loop: cond_resched'",
        "run task=u0 until=done"]
    assert case.comments == ["first", "about the next step", ""]
    assert case.expect == {"original": "clean"}


def test_render_then_parse_is_the_identity():
    case = parse(GOOD)
    again = parse(render(case))
    assert (again.steps, again.expect, again.config, again.summary) == (
        case.steps, case.expect, case.config, case.summary)


def test_save_is_atomic_and_never_overwrites(tmp_path):
    case = parse(GOOD)
    first, written = save(case, tmp_path)
    assert written and first.name == "tiny.case"
    same, written = save(case, tmp_path)
    assert same == first and not written
    case.summary = "a different case with the same name"
    second, written = save(case, tmp_path)
    assert written and second.name == "tiny-2.case"
    assert load(first).summary.startswith("a task") and set(discover(tmp_path)) == {first, second}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


@pytest.mark.parametrize("text, message", [
    ("hello\n", r"<case>:1: not an fpufuzz case"),
    ("fpufuzz-case 9\n", r"<case>:1: case format 9 is not supported"),
    (GOOD.replace("config:", "konfig:"), r"<case>:5: unknown field 'konfig'"),
    (GOOD.replace("cpus=2", "cpus=two"), r"<case>:5: config: cpus must be a number"),
    (GOOD.replace("cpus=2", "cpus=9"), r"<case>:5: config: cpus=9: choose 1 to 4"),
    (GOOD.replace("original clean", "original sometimes"), r"<case>:6: expect:"),
    (GOOD.replace("schedule cpu=0", "reschedule cpu=0"), r"<case>:9: unknown step 'reschedule'"),
    (GOOD.replace("next=u0", "nxt=u0"), r"<case>:9: schedule takes cpu= next=; got 'nxt=u0'"),
    (GOOD.replace("cpu=0 next=u0", "next=u0"), r"<case>:9: schedule needs cpu="),
    (GOOD.replace("cpu=0", "cpu=zero"), r"<case>:9: cpu= takes a CPU number"),
    (GOOD.replace('cond_resched"', "cond_resched"), r"<case>:10: No closing quotation"),
    (GOOD.replace("steps:", "stops:"), r"unknown field 'stops'"),
    (GOOD.split("steps:")[0] + "steps:\n", r"no steps"),
    (GOOD.replace("name: tiny\n", ""), r"missing field 'name:'"),
])
def test_every_mistake_gets_one_line_naming_file_and_line(text, message):
    with pytest.raises(CorpusFormatError, match=message) as e:
        parse(text)
    assert "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(CorpusFormatError, match="no such case file"):
        load(tmp_path / "absent.case")
