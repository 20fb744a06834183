"""Replay: run a corpus case on a variant, step by step, and judge it.

The outcome vocabulary is closed: ``clean``, ``violates <invariant>`` (the first violation decides), and
``n/a`` (the case pauses a task at a labelled point this variant's code does not have, or takes a step there
that this variant's code does not allow -- a point its lock covers -- and the case says so in its expectations).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fpufuzz import oracle
from fpufuzz.corpus import Case
from fpufuzz.errors import IllegalStep
from fpufuzz.ops import LabelNotReached, Model, Step
from fpufuzz.oracle import Finding
from fpufuzz.state import World
from fpufuzz.variant import Variant

CLEAN, NA = "clean", "n/a"


@dataclass
class StepRecord:
    number: int  # 1-based
    step: Step
    comment: str
    before: World
    after: World
    findings: list[Finding]  # from the step: violations and warnings
    diagnostics: list[Finding]  # internal-consistency diagnostics that became true at this step
    trace: list  # (label, result) of each kernel event executed live

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "violation"]


@dataclass
class Run:
    case: Case
    variant: Variant
    outcome: str = CLEAN
    records: list[StepRecord] = field(default_factory=list)
    reason: str = ""  # for n/a: why

    @property
    def failing(self) -> StepRecord | None:
        return next((r for r in self.records if r.violations), None)


def replay(case: Case, variant: Variant) -> Run:
    """Run every step of ``case`` on ``variant``; stop at the first violation. IllegalStep (bad input) is
    raised with the case file and line."""
    model = Model(variant, case.config)
    world = model.initial()
    run = Run(case, variant)
    seen = {_key(f) for f in oracle.diagnostics(world)}
    for index, step in enumerate(case.steps):
        trace: list = []
        try:
            result = model.apply(world, step, trace)
        except LabelNotReached as e:
            run.outcome, run.reason = NA, f"step {index + 1} ({case.where(index)}): {e}"
            return run
        except IllegalStep as e:
            if case.expect.get(variant.name) == NA:  # recorded when the case was built: not a bad case
                run.outcome, run.reason = NA, f"step {index + 1} ({case.where(index)}): {e}"
                return run
            raise IllegalStep(f"{case.where(index)}: {step}: {e}") from None
        now = oracle.diagnostics(result.world)
        new = [f for f in now if _key(f) not in seen]
        seen = {_key(f) for f in now}
        comment = case.comments[index] if index < len(case.comments) else ""
        record = StepRecord(index + 1, step, comment, world, result.world, list(result.findings), new, trace)
        run.records.append(record)
        world = result.world
        if record.violations:
            run.outcome = f"violates {record.violations[0].name}"
            return run
    return run


def _key(finding: Finding):
    return (finding.name, finding.task, finding.cpu)


def expected_outcome(case: Case, variant: Variant) -> str | None:
    """What ``case`` expects of ``variant``: its ``expect:`` line; else clean for a variant expected clean; else
    None (unjudged: a buggy variant the case does not know)."""
    if variant.name in case.expect:
        return case.expect[variant.name]
    return CLEAN if variant.expect == CLEAN else None
