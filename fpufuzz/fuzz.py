"""A fuzzing campaign on one variant: run the machine under a profile, and judge the result."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from hypothesis import Phase, settings as Settings
from hypothesis.database import ExampleDatabase
from hypothesis.stateful import run_state_machine_as_test

from fpufuzz import __version__, casegen, oracle, profiles
from fpufuzz.determinism import without_local_constants
from fpufuzz.config import WHOLE, Config
from fpufuzz.corpus import Case
from fpufuzz.machine import Campaign, CampaignOver, Violation, machine_for
from fpufuzz.ops import Model, Step, kinds
from fpufuzz.reach import SOMETIMES, reachable_on
from fpufuzz.shrink import first_violation, minimize
from fpufuzz.variant import Variant


@dataclass
class FuzzResult:
    variant: Variant
    config: Config
    profile: str
    outcome: str  # "clean" or "violates <invariant>"
    campaign: Campaign
    elapsed: float
    steps: list[Step] | None = None  # the minimized failing step list
    found_steps: int = 0  # how many steps the failing example had before minimizing
    case: Case | None = None  # the minimized failing case, with its outcome on every variant
    message: str = ""
    missing: set[str] = field(default_factory=set)  # reachability a clean verdict needed and did not get
    undrawn: set[str] = field(default_factory=set)  # kinds of step the machine has and the campaign never took

    @property
    def as_expected(self) -> bool:
        """The variant's EXPECT holds: its violation was found, or it is clean, reached what it can reach and took
        every kind of step its machine has."""
        if self.variant.expect == "clean":
            return self.outcome == "clean" and not self.missing and not self.undrawn
        return same_bug(self.outcome, self.variant.expect)


def same_bug(outcome: str, expect: str) -> bool:
    """``outcome`` is the violation ``expect`` names, or the same stale registers seen at another observation point
    (``oracle.same_bug``; seed 15 of irq_fpu_usable_in_fpregs_lock meets its interrupt inside fpregs_lock() at a
    core dump's XSAVE first)."""
    if outcome == expect:
        return True
    prefix = "violates "
    return (outcome.startswith(prefix) and expect.startswith(prefix)
            and outcome.removeprefix(prefix) in oracle.same_bug(expect.removeprefix(prefix)))


def required_reachability(variant: Variant, config: Config | None = None) -> set[str]:
    """The properties a clean verdict must have reached: all those ``config``'s operation families can reach (all,
    without one), less those the variant declares UNREACHABLE."""
    reachable = set(SOMETIMES) if config is None else reachable_on(config)
    return reachable - set(variant.unreachable)


def fuzz(variant: Variant, config: Config | None = None, profile: str = "ci", seed: int | None = None,
         examples: int | None = None, steps: int | None = None, database: ExampleDatabase | None = None,
         naive: bool = False, campaign: Campaign | None = None, backend: str | None = None) -> FuzzResult:
    """Fuzz ``variant`` on the machine ``config`` under ``profile``; ``examples``, ``steps``, ``database`` and
    Hypothesis's ``backend`` (``hypothesis-urandom``: its generator without the example tree, for the benchmark's
    comparison) override the profile's."""
    config = config or Config(**WHOLE)
    model = Model(variant, config)
    campaign = campaign or Campaign()
    if seed is None and profile == "ci":
        seed = profiles.CI_SEED
    factory = _factory(machine_for(model, campaign, naive), variant, config, naive, seed)
    settings = _settings(profile, examples, steps, database, backend)
    campaign.stop_at_violation = Phase.shrink not in settings.phases
    start = time.perf_counter()
    campaign.started = start
    result = FuzzResult(variant, config, profile, "clean", campaign, 0.0)
    try:
        with without_local_constants():
            run_state_machine_as_test(factory, settings=settings)
    except Violation as violation:
        _record(result, model, violation, seed)
    except CampaignOver:  # found in the target phase: the search ended at the next example
        _record(result, model, campaign.violation, seed)
    result.elapsed = time.perf_counter() - start
    if result.outcome == "clean":
        result.missing = required_reachability(variant, config) - campaign.reached
        result.undrawn = kinds(config) - set(campaign.drawn)
    return result


def _record(result: FuzzResult, model: Model, violation: Violation, seed: int | None) -> None:
    result.found_steps = len(violation.steps)
    result.steps = minimize(model, violation.steps, violation.finding.name)
    _, finding = first_violation(model, result.steps)  # the same bug, maybe met at another observation point
    invariant = finding.name
    result.outcome, result.message = f"violates {invariant}", finding.message
    how = f"fpufuzz fuzz --variant {result.variant.name} --profile {result.profile}" + (
        f" --seed {seed}" if seed is not None else "")
    provenance = (f"{how} (fpufuzz {__version__}, {result.config.header()}): {result.found_steps} steps found, "
                  f"{len(result.steps)} after minimizing")
    result.case = casegen.build(result.steps, invariant, result.variant, provenance, result.config)


def _factory(machine, variant: Variant, config: Config, naive: bool, seed: int | None):
    def factory():
        return machine()

    # Hypothesis keys its example database on the factory's digest; the source is shared by every variant, so
    # add what makes this campaign different.
    factory._hypothesis_internal_add_digest = f"fpufuzz:{variant.name}:{config}:{naive}".encode()
    if seed is not None:
        factory._hypothesis_internal_use_seed = seed
    return factory


def _settings(profile: str, examples: int | None, steps: int | None, database, backend: str | None) -> Settings:
    base = profiles.get(profile)
    changes = {} if backend is None else {"backend": backend}
    if examples is not None:
        changes["max_examples"] = examples
    if steps is not None:
        changes["stateful_step_count"] = steps
    if database is not None:
        changes["database"] = database
    return Settings(base, **changes)
