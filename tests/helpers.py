"""Helpers shared by the tests: build models and drive them with steps in corpus spelling."""

from __future__ import annotations

import types

from fpufuzz import Config, Model, corpus, variant
from fpufuzz.corpus import parse_step
from fpufuzz.fuzz import same_bug


def steps(*texts):
    return [parse_step(t) for t in texts]


def run(model: Model, *texts, world=None):
    """Apply steps given in corpus spelling; return (world, findings of all steps)."""
    world = model.initial() if world is None else world
    findings = []
    for step in steps(*texts):
        result = model.apply(world, step)
        world = result.world
        findings.extend(result.findings)
    return world, findings


def patched(config: Config, **functions) -> Model:
    """A model of the baseline with ``functions`` replaced: a patch written inline in a test."""
    kernel = variant.kernel_class("test", {**variant.baseline_functions(), **functions})
    return Model(types.SimpleNamespace(kernel_class=kernel), config)


def model_of(name: str = "original", **config) -> Model:
    return Model(variant.load(name), Config(**config))


def case_report(result, folder) -> str:
    """A fuzz test's failure text: the minimized case, saved into ``folder`` (the test's artifacts), if there is one."""
    if result.case is None:
        return ""
    path, _ = corpus.save(result.case, folder)
    return f"\nminimized case (saved to {path}):\n{corpus.render(result.case)}"


def assert_finds_its_bug(v, result, profile: str, report: str) -> None:
    """A fuzz test's verdict on a variant expected to violate: its known violation found (user-regs, sigframe,
    guest-regs, regset: the same stale registers met at another point, ``fuzz.same_bug``), and the minimized case
    replaying it."""
    assert same_bug(result.outcome, v.expect), (
        f"the fuzzer did not find {v.name}'s known violation ({v.expect}) within {result.campaign.examples} "
        f"examples of profile {profile}{report}")
    assert result.case.expect[v.name] == result.outcome  # the minimized case replays
