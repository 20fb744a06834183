"""Corpus cases: one scenario per file, human-readable, versioned, parsed without executing anything.

The format (docs/corpus-format.md has the full description)::

    fpufuzz-case 1
    name: exec+migrate-back+kthread
    summary: what the case demonstrates, in a sentence or a paragraph
      (continuation lines are indented)
    config: cpus=2 users=1 kthreads=1
    model: linux-v6.5-rc7/1 fpufuzz-0.1.0
    provenance: where the case came from
    expect: original violates user-regs
    expect: exec_invalidate_last_cpu clean

    steps:
      schedule cpu=0 next=u0          # a comment
      run task=u0 until=done

Writes are atomic and never replace a file: a new case gets a new name.
"""

from __future__ import annotations

import os
import shlex
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from fpufuzz.config import PREEMPTION_MODELS, XRSTOR_FAULTS, Config
from fpufuzz.errors import CorpusFormatError, FpufuzzError, IllegalStep
from fpufuzz.ops import DEFAULTS, OPS, Step, xrstor_fault
from fpufuzz.oracle import VIOLATIONS

FORMAT = 1
MAGIC = "fpufuzz-case"
SUFFIX = ".case"
_KEYS = ("name", "summary", "config", "model", "provenance", "expect")
_REQUIRED = ("name", "summary", "config")
_WIDTH = 112


@dataclass
class Case:
    name: str
    summary: str
    config: Config
    steps: list[Step]
    expect: dict[str, str] = field(default_factory=dict)
    model: str = ""
    provenance: str = ""
    comments: list[str] = field(default_factory=list)  # one per step, "" where none
    path: Path | None = None
    lines: list[int] = field(default_factory=list)  # the file line of each step

    def where(self, index: int) -> str:
        """``file:line`` of step ``index`` (0-based), for messages."""
        if self.path is None or index >= len(self.lines):
            return f"step {index + 1}"
        return f"{self.path}:{self.lines[index]}"


# ---------------------------------------------------------------- reading


def load(path: str | os.PathLike) -> Case:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorpusFormatError(f"{path}: no such case file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CorpusFormatError(f"{path}: cannot read: {e}") from None
    return parse(text, path)


def parse(text: str, path: Path | None = None) -> Case:
    where = str(path) if path else "<case>"
    lines = text.splitlines()
    if not lines or not lines[0].startswith(MAGIC):
        raise CorpusFormatError(f"{where}:1: not an fpufuzz case (the first line must be '{MAGIC} {FORMAT}')")
    _check_version(where, lines[0])
    header, first_step = _header(where, lines)
    for key in _REQUIRED:
        if key not in header:
            raise CorpusFormatError(f"{where}: missing field '{key}:' (see docs/corpus-format.md)")
    config = _config(f"{where}:{header['config'][0]}", header["config"][1])
    steps, comments, numbers = _steps(where, lines, first_step)
    _check_config_allows(where, config, steps, numbers)
    expect = _expect(where, header.get("expect", []))
    return Case(header["name"][1], header["summary"][1], config, steps, expect, header.get("model", (0, ""))[1],
                header.get("provenance", (0, ""))[1], comments, path, numbers)


def _check_version(where: str, line: str) -> None:
    words = line.split()
    if len(words) != 2 or not words[1].isdigit():
        raise CorpusFormatError(f"{where}:1: first line must be '{MAGIC} {FORMAT}', found {line!r}")
    if int(words[1]) != FORMAT:
        raise CorpusFormatError(f"{where}:1: case format {words[1]} is not supported by this fpufuzz (format "
                                f"{FORMAT}); upgrade fpufuzz or re-save the case with a matching version")


def _header(where: str, lines: list[str]):
    header: dict = {}
    key = None
    for number, line in enumerate(lines[1:], start=2):
        if line.strip() == "steps:":
            return header, number
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            if key is None or key == "expect":
                raise CorpusFormatError(f"{where}:{number}: indented line outside a field")
            header[key] = (header[key][0], header[key][1] + " " + line.strip())
            continue
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or key not in _KEYS:
            raise CorpusFormatError(f"{where}:{number}: unknown field {key!r}; fields are {', '.join(_KEYS)}")
        if key == "expect":
            header.setdefault("expect", []).append((number, value.strip()))
        elif key in header:
            raise CorpusFormatError(f"{where}:{number}: field '{key}' given twice")
        else:
            header[key] = (number, value.strip())
    raise CorpusFormatError(f"{where}: no 'steps:' line")


# Config settings a case header may give: numbers, yes/no flags, and settings with named values.
_NUMBERS = ("cpus", "users", "kthreads", "spare")
_FLAGS = ("preempt_rt", "lifecycle", "signals", "kvm", "softirq", "ptrace", "fnsave")
_CHOICES = {"preempt": PREEMPTION_MODELS, "xrstor_fault": XRSTOR_FAULTS}


def parse_config(text: str, where: str = "<config>") -> Config:
    """A machine written as a case header's ``config:`` (``Config.header()``); CorpusFormatError names ``where``."""
    return _config(where, text)


def _config(at: str, text: str) -> Config:
    """``text`` parsed; errors start with ``at`` (a file and line)."""
    values = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if not sep or key not in (*_NUMBERS, *_FLAGS, *_CHOICES):
            raise CorpusFormatError(f"{at}: config: unknown setting {word!r}; settings are cpus=N "
                                    "users=N kthreads=N spare=N preempt_rt=yes|no lifecycle=yes|no signals=yes|no "
                                    f"kvm=yes|no softirq=yes|no ptrace=yes|no fnsave=yes|no preempt={'|'.join(PREEMPTION_MODELS)} "
                                    f"xrstor_fault={'|'.join(XRSTOR_FAULTS)}")
        if key in _FLAGS:
            if value not in ("yes", "no"):
                raise CorpusFormatError(f"{at}: config: {key} must be yes or no")
            values[key] = value == "yes"
        elif key in _CHOICES:
            if value not in _CHOICES[key]:
                raise CorpusFormatError(f"{at}: config: {key} must be one of "
                                        f"{', '.join(_CHOICES[key])}, not {value!r}")
            values[key] = value
        elif not value.isdigit():
            raise CorpusFormatError(f"{at}: config: {key} must be a number, not {value!r}")
        else:
            values[key] = int(value)
    try:
        return Config(**values)
    except FpufuzzError as e:
        raise CorpusFormatError(f"{at}: config: {e}") from None


def _check_config_allows(where: str, config: Config, steps: list[Step], numbers: list[int]) -> None:
    """A step asking for something the machine's configuration rules out (an XRSTOR that modifies the registers on
    a machine whose XRSTOR keeps them, say) is refused when the case is read, naming the config field."""
    for step, number in zip(steps, numbers):
        if step.op == "sigreturn":
            try:
                xrstor_fault(config, step)
            except IllegalStep as e:
                raise CorpusFormatError(f"{where}:{number}: {e}") from None


def _expect(where: str, entries) -> dict[str, str]:
    expect = {}
    for number, text in entries:
        words = text.split()
        ok = (len(words) == 2 and words[1] in ("clean", "n/a")) or (
            len(words) == 3 and words[1] == "violates" and words[2] in VIOLATIONS)
        if not ok:
            raise CorpusFormatError(f"{where}:{number}: expect: write '<variant> clean', '<variant> n/a' or "
                                    f"'<variant> violates <{'|'.join(VIOLATIONS)}>', not {text!r}")
        expect[words[0]] = " ".join(words[1:])
    return expect


def _steps(where: str, lines: list[str], first: int):
    steps, comments, numbers = [], [], []
    for number, line in enumerate(lines[first:], start=first + 1):
        code, _, comment = _split_comment(line)
        if not code.strip():
            if comment and steps:
                comments[-1] = (comments[-1] + " " + comment).strip()
            continue
        steps.append(parse_step(code, f"{where}:{number}"))
        comments.append(comment)
        numbers.append(number)
    if not steps:
        raise CorpusFormatError(f"{where}: the case has no steps")
    return steps, comments, numbers


def _split_comment(line: str) -> tuple[str, str, str]:
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#":
            return line[:i], "#", line[i + 1:].strip()
    return line, "", ""


def parse_step(text: str, where: str = "<step>") -> Step:
    """Parse ``op key=value ...``; raise CorpusFormatError naming ``where`` on any mistake."""
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise CorpusFormatError(f"{where}: {e}") from None
    op, args = words[0], words[1:]
    if op not in OPS:
        raise CorpusFormatError(f"{where}: unknown step {op!r}; steps are {', '.join(OPS)}")
    values = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or key not in OPS[op]:
            raise CorpusFormatError(f"{where}: {op} takes {' '.join(k + '=' for k in OPS[op])}; got {arg!r}")
        values[key] = _value(where, op, key, value)
    missing = [k for k, kind in OPS[op].items()
               if not str(kind).endswith("?") and (op, k) not in DEFAULTS and k not in values]
    if missing:
        raise CorpusFormatError(f"{where}: {op} needs {', '.join(k + '=' for k in missing)}")
    return Step.make(op, **values)


def _value(where: str, op: str, key: str, value: str):
    kind = OPS[op][key]
    if kind == "cpu":
        if not value.isdigit():
            raise CorpusFormatError(f"{where}: {key}= takes a CPU number, not {value!r}")
        return int(value)
    if isinstance(kind, tuple) and value not in kind:
        raise CorpusFormatError(f"{where}: {key}={value!r} is not one of {', '.join(kind)}")
    return value


# ---------------------------------------------------------------- writing


def render(case: Case) -> str:
    out = [f"{MAGIC} {FORMAT}", f"name: {case.name}", *_wrapped("summary", case.summary),
           f"config: {case.config.header()}"]
    if case.model:
        out.append(f"model: {case.model}")
    if case.provenance:
        out.extend(_wrapped("provenance", case.provenance))
    out.extend(f"expect: {variant} {verdict}" for variant, verdict in case.expect.items())
    out += ["", "steps:"]
    width = max(len(str(step)) for step in case.steps) + 2
    comments = case.comments or [""] * len(case.steps)
    for step, comment in zip(case.steps, comments):
        out.append(f"  {str(step):<{width}}# {comment}".rstrip(" #") if comment else f"  {step}")
    return "\n".join(out) + "\n"


def _wrapped(key: str, text: str) -> list[str]:
    return textwrap.wrap(f"{key}: {text}", width=_WIDTH, subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False)


def save(case: Case, directory: str | os.PathLike) -> tuple[Path, bool]:
    """Write ``case`` into ``directory`` atomically, never replacing a file. Returns (path, written): an identical
    file already there is reused (written False); a different file with the same name makes a new name."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    text = render(case)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        for n in range(1, 1000):
            path = directory / (f"{case.name}{SUFFIX}" if n == 1 else f"{case.name}-{n}{SUFFIX}")
            if path.exists() and path.read_text(encoding="utf-8") == text:
                return path, False
            try:
                os.link(tmp, path)  # fails if path exists: no file is ever replaced
                return path, True
            except FileExistsError:
                continue
        raise FpufuzzError(f"{directory}: too many cases named {case.name}")
    finally:
        os.unlink(tmp)


def discover(directory: str | os.PathLike) -> list[Path]:
    return sorted(Path(directory).glob(f"*{SUFFIX}"))
