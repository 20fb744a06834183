"""The Hypothesis stateful machine that fuzzes a variant against the oracle.

One rule per operation of the model (fpufuzz/ops.py), each enabled only when the kernel could take it, drawing
its arguments from the steps that are legal right now; the oracle's violations fail the run; reachability
properties (fpufuzz/reach.py) are collected for the verdict. A failure's step list is minimized by
``fpufuzz.shrink`` and turned into a corpus case by ``fpufuzz.casegen``.

``NaiveMachine`` is the benchmark's baseline: one rule that draws any legal step.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import takewhile

from hypothesis import strategies as st, target
from hypothesis.control import current_build_context
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from fpufuzz import ops, oracle, reach
from fpufuzz.ops import DONE, Model, Step
from fpufuzz.oracle import Finding
from fpufuzz.state import GUEST_MODE, STOP_TRACED

# What the world does at a kernel path's interleaving points while a rule runs it: nothing, stop there (the
# task stays paused on its CPU and other rules may act), switch the task out, move it to another CPU, or deliver a
# hard interrupt (its handler uses kernel FPU, or raises a softirq that does). Scheduling decisions wait for a
# point where the task is preemptible. An interrupt's pick says where it lands: here (one pick in four), anywhere
# later (one in eight, ``ANYWHERE_EVERY``), or at one of the points of the next section the path holds (preemption
# or bottom halves off: fpregs_lock(), kernel FPU), where interrupts race with the task's own FPU work; and which
# work its handler does.
ACTIONS = ("continue", "stop", "switch_out", "migrate", "irq")
# A plan is a short list of (action, pick) decisions, consumed in order at the path's interleaving points. Lists
# shrink towards empty (run straight to the end), actions towards "continue".
PLAN_LENGTH = 6
# One interrupt decision in ANYWHERE_EVERY (its pick says so) lands at any later point of the path where
# interrupts are on, drawn among them by running the path ahead on a copy of the world, rather than here or inside
# the next section: deep points of long paths are reached that way, while the other decisions keep the dense
# shallow landings that the known bugs' short windows need (docs/fuzzing.md, "Where interrupts land").
ANYWHERE_EVERY = 8
# How far ahead a plan looks along a path (for an interrupt landing anywhere, or inside a section): past the
# longest modeled path's points (runaway paths are cut by the runtime's own bound).
MAX_AHEAD = 64


class Violation(AssertionError):
    """The oracle saw a user-observable violation; carries the step list that led to it."""

    def __init__(self, finding: Finding, steps: list[Step]):
        super().__init__(f"{finding}\nafter {len(steps)} steps")
        self.finding = finding
        self.steps = steps


class CampaignOver(KeyboardInterrupt):
    """Ends a Hypothesis search from inside it. Hypothesis lets an interrupt through untouched (any other
    exception is the test failing, or its data generation being inconsistent); only ``fpufuzz.fuzz`` catches this
    one, and reports the campaign's first violation. A real Ctrl-C is not one of these and goes on up."""


@dataclass
class Campaign:
    """What a fuzzing run learned, shared by every machine instance of one run."""

    examples: int = 0
    steps: int = 0
    reached: set[str] = field(default_factory=set)
    drawn: Counter = field(default_factory=Counter)  # steps taken, by kind (fpufuzz.ops.kind)
    diagnostics: dict[str, int] = field(default_factory=dict)
    first_violation: float | None = None  # seconds from start to the first violation
    examples_to_violation: int | None = None
    steps_to_violation: int | None = None  # model steps taken in the campaign up to the violation, it included
    started: float = field(default_factory=time.perf_counter)
    listener: object = None  # called with the campaign after every example starts (progress bars)
    # End the search at the first violation: the profile leaves minimizing to fpufuzz.shrink (fpufuzz.fuzz)
    stop_at_violation: bool = False
    violation: Violation | None = None  # the first one met


class _Base(RuleBasedStateMachine):
    model: Model
    campaign: Campaign

    def __init__(self):
        super().__init__()
        if self.campaign.stop_at_violation and self.campaign.violation is not None and not _final_replay():
            # Hypothesis's target phase hill-climbs on to the end of its pass after a failure, past the example
            # budget (measured: 200 s after a find at 73 s). The next example it starts ends the search instead
            # (docs/fuzzing.md, 'After the first violation').
            raise CampaignOver
        self.world = self.model.initial()
        self.steps: list[Step] = []
        self.campaign.examples += 1
        if self.campaign.listener is not None:
            self.campaign.listener(self.campaign)
        self._legal = None
        self._derived: dict[str, list] = {}  # properties of the current world, computed once (see _once)
        self.recent: list[str] = []  # task names, most recently stepped first
        self.stale = 0  # times the example entered a state where a lazy-restore proof held over registers not its own
        self._was_stale = False

    @property
    def legal(self) -> dict[str, list[Step]]:
        """Legal steps by operation, those of the most recently active tasks first: picks lean towards index 0,
        so a run tends to follow one task's story through the kernel rather than hop between tasks."""
        if self._legal is None:
            grouped: dict[str, list[Step]] = {}
            for step in sorted(self.model.enabled(self.world), key=self._rank):
                grouped.setdefault(step.op, []).append(step)
            self._legal = grouped
        return self._legal

    def _rank_task(self, task: str) -> int:
        return self.recent.index(task) if task in self.recent else len(self.recent)

    def _rank(self, step: Step) -> int:
        task = step.get("next") or step.get("task")
        if task is None:  # an interrupt: ranked by the task it interrupts
            task = self.world.tasks[self.world.cpus[step.get("cpu")].current].name
        return self._rank_task(task)

    def apply(self, step: Step) -> None:
        trace: list = []
        before = self.world
        result = self.model.apply(before, step, trace)
        self.world, self._legal, self._derived = result.world, None, {}
        self.steps.append(_concrete(step, before, result.world))
        task = step.get("next") or step.get("task")
        if task is not None:
            self.recent = [task] + [t for t in self.recent if t != task]
        campaign = self.campaign
        campaign.steps += 1
        campaign.drawn[ops.kind(step)] += 1
        campaign.reached |= reach.reached(before, step, result.world, trace)
        stale = bool(self._stale_cpus)
        if stale:
            self.stale += not self._was_stale
            campaign.diagnostics["stale-cache"] = campaign.diagnostics.get("stale-cache", 0) + 1
        self._was_stale = stale
        for finding in result.findings:
            if finding.kind == "violation":
                violation = Violation(finding, list(self.steps))
                if campaign.first_violation is None:
                    campaign.first_violation = time.perf_counter() - campaign.started
                    campaign.examples_to_violation = campaign.examples
                    campaign.steps_to_violation = campaign.steps
                    campaign.violation = violation
                raise violation
            campaign.diagnostics[finding.name] = campaign.diagnostics.get(finding.name, 0) + 1

    def _move(self, task: str, to: int, replacement: int) -> None:
        index = self.world.task_index(task)
        running = self.world.running_on(index)
        if running is not None:
            out = [s for s in self.legal["schedule"] if s.get("cpu") == running]
            self._switch(out, running, replacement)
        self.apply(Step.make("schedule", cpu=to, next=task))

    @property
    def migrations(self) -> list[tuple[str, int]]:
        """(task, CPU) for every task running on a CPU where it may be switched out, and another CPU that may
        switch to it."""
        return self._once("migrations", lambda: [(self.world.tasks[i].name, to) for i, to in self._moves()
                                                 if to != self.world.tasks[i].cpu or self.world.running_on(i) is None])

    @property
    def cache_hits(self) -> list[tuple[str, int]]:
        """(user task, CPU) where the CPU's owner tag is the task's fpu and the task is not running there."""
        return self._once("cache_hits", lambda: [(self.world.tasks[i].name, to) for i, to in self._moves()
                                                 if self.world.cpus[to].owner == self.world.tasks[i].fpu
                                                 and self.world.running_on(i) != to])

    @property
    def preemptible_cpus(self) -> list[int]:
        """CPUs that may switch tasks now: any of them can take a task once it is switched out, even if nothing
        waits for it there."""
        return self._once("preemptible", lambda: [cpu for cpu in range(len(self.world.cpus))
                                                  if ops.preemptible(self.world, cpu, self.model.config)])

    def _once(self, name: str, compute):
        """A property of the current world, computed at its first use (preconditions ask for them every step)."""
        if name not in self._derived:
            self._derived[name] = compute()
        return self._derived[name]

    def _moves(self):
        preemptible = self.preemptible_cpus
        ranked = sorted(range(len(self.world.tasks)), key=lambda i: self._rank_task(self.world.tasks[i].name))
        for index in ranked:
            task = self.world.tasks[index]
            if task.kind == "idle" or not task.alive or task.mode == "new" or task.stop == STOP_TRACED:
                continue
            running = self.world.running_on(index)
            if running is not None and running not in preemptible:
                continue
            for to in preemptible:
                if to != running:
                    yield index, to

    def follow(self, task: str, plan) -> None:
        """Run ``task``'s kernel path to its end, applying ``plan`` -- a queue of (action, pick) decisions -- at its
        interleaving points. This is how a rule explores where in a path preemption, migration and interrupts
        happen, in one Hypothesis step: the kernel's scheduling points, not the rule sequence, set the pace."""
        queue = list(plan)
        index = self.world.task_index(task)
        while (self.world.tasks[index].cont is not None and self.world.running_on(index) is not None
               and self.world.tasks[index].mode != GUEST_MODE):
            if not queue:
                self.apply(Step.make("run", task=task, until=DONE))
                return
            action, pick = queue[0]
            if action == "stop":
                return
            anywhere = action == "irq" and pick % ANYWHERE_EVERY == ANYWHERE_EVERY - 1
            if anywhere:
                pick = self._land_anywhere(index, pick // ANYWHERE_EVERY)
                if pick is None:  # interrupts stay off to the path's end: the decision lapses
                    queue.pop(0)
                    continue
            elif action in ("switch_out", "migrate") and not self._preemptible(index):
                self.apply(Step.make("run", task=task))  # the decision waits for a scheduling point
                continue
            elif action == "irq" and pick % 4:
                if self._preemptible(index):
                    self.apply(Step.make("run", task=task))  # the decision waits for a point inside a section
                    continue
                for _ in range(pick // 4 % self._section_points(index)):  # one of the section's points
                    self.apply(Step.make("run", task=task))
                if self.world.tasks[index].cont is None or self.world.running_on(index) is None:
                    return
            queue.pop(0)
            if action == "switch_out":
                self._switch_out(index, pick)
                return
            if action == "migrate":
                self._migrate(index, pick)
            if action == "irq":
                self._interrupt(self.world.tasks[index].cpu, pick if anywhere else pick // 64)
            self.apply(Step.make("run", task=task))

    def _land_anywhere(self, index: int, pick: int) -> int | None:
        """Run the task's path on to one of its later points where an interrupt may come (``pick`` chooses which),
        and return what is left of ``pick``; None if there is no such point."""
        points = self._interruptible_ahead(index)
        if not points:
            return None
        for _ in range(_pick(points, pick)):
            self.apply(Step.make("run", task=self.world.tasks[index].name))
        return pick // len(points)

    def _interruptible_ahead(self, index: int) -> list[int]:
        """How many points on from here each later point of the task's path is where interrupts are on."""
        return [offset for offset, world in enumerate(self._path_ahead(index))
                if ops.interruptible(world, world.tasks[index].cpu, self.model.config)]

    def _path_ahead(self, index: int):
        """The worlds at the task's path's points from here on (this one first), up to ``MAX_AHEAD`` of them, while
        the task runs its path on its CPU: found by running the path ahead on a copy of the world (paths are
        deterministic), nothing recorded."""
        world, step = self.world, Step.make("run", task=self.world.tasks[index].name)
        for _ in range(MAX_AHEAD):
            task = world.tasks[index]
            if task.cont is None or world.running_on(index) is None or task.mode == GUEST_MODE:
                return
            yield world
            world = self.model.apply(world, step).world

    def _preemptible(self, index: int) -> bool:
        """The task, paused in a kernel path, is at a point where the machine's preemption model may switch it."""
        return ops.preemptible(self.world, self.world.tasks[index].cpu, self.model.config)

    def _section_points(self, index: int) -> int:
        """How many interleaving points are left in the section the task's path is in, this one included."""
        inside = takewhile(lambda world: world.cpus[world.tasks[index].cpu].ctx.atomic, self._path_ahead(index))
        return max(sum(1 for _ in inside), 1)

    def _interrupt(self, cpu: int, pick: int) -> None:
        """A hard interrupt on ``cpu``, its work picked among those the machine has, if one may arrive now."""
        works = [s for s in self.legal.get("irq", ()) if s.get("cpu") == cpu]
        if works:
            self.apply(_pick(works, pick))

    def _switch_out(self, index: int, pick: int) -> None:
        cpu = self.world.tasks[index].cpu
        self._switch([s for s in self.legal["schedule"] if s.get("cpu") == cpu], cpu, pick)

    def _next_task(self, switches: list[Step], cpu: int, pick: int) -> Step:
        """One of the context switches ``switches`` on ``cpu``: every other pick switches to the task whose
        registers the CPU still holds (its owner tag names that task's fpu) if it may run there, the others pick
        among all. The scheduler often goes back to the task that last ran on a CPU, and that switch is where the
        lazy restore's proof is tested: the task finds its registers in place and skips the restore, unless some
        path used them meanwhile and broke the proof (docs/fuzzing.md, 'Context switches')."""
        owner = self.world.cpus[cpu].owner
        cached = [s for s in switches if self.world.tasks[self.world.task_index(s.get("next"))].fpu == owner]
        if cached and (pick % 2 == 0 or self._stale_on(cpu)):
            return cached[0]
        return _pick(switches, pick // 2)

    def _switch(self, switches: list[Step], cpu: int, pick: int) -> None:
        """Take the context switch ``_next_task`` picks; if it brings a task onto its own stale cache, follow the
        task on to user mode, where the stale registers show: left paused on its way there, it was usually
        switched out again before it got there, and the cache re-tagged."""
        stale = self._stale_on(cpu)
        step = self._next_task(switches, cpu, pick)
        self.apply(step)
        task = step.get("next")
        if stale and self.world.tasks[self.world.task_index(task)].fpu == self.world.cpus[cpu].owner:
            self.follow(task, ())

    def _stale_on(self, cpu: int) -> bool:
        """The CPU holds a stale cache: the task its tag names is switched in there on every pick, not every other
        one, since that switch is the one that shows the bug. Never true on a correct kernel, whose campaigns draw
        as they did without it."""
        return cpu in self._stale_cpus

    @property
    def _stale_cpus(self) -> set[int]:
        """The CPUs holding a stale cache (``oracle.stale_tasks``), found once per world: ``apply`` counts them
        after every step and the scheduling moves ask again in the same world."""
        return self._once("stale", lambda: set(oracle.stale_tasks(self.world).values()))

    def _migrate(self, index: int, pick: int) -> None:
        """Move the task to another CPU, if it may be switched in again (``_moves``): a kernel that leaves a task
        running after marking it stopped for its tracer (a mutant that drops ptrace_stop()'s schedule()) must
        not make the fuzzer take an illegal step."""
        targets = [to for i, to in self._moves() if i == index]
        if targets:
            self._move(self.world.tasks[index].name, _pick(targets, pick), pick // len(targets))


def _final_replay() -> bool:
    """Hypothesis is replaying the failing example to report it, its search over. (Its build context says so; on
    a Hypothesis without one, True: no example is cut short.)"""
    try:
        return current_build_context().is_final
    except Exception:  # noqa: BLE001 -- any Hypothesis that lacks it, or no context
        return True


def _concrete(step: Step, before, after) -> Step:
    """The step as a corpus line: a ``run`` records where it stopped, so the case replays on other variants."""
    if step.op != "run":
        return step
    try:
        task = after.tasks[after.task_index(step.get("task"))]
    except KeyError:  # the path ended in the task's death
        return Step.make("run", task=step.get("task"), until=DONE)
    return Step.make("run", task=step.get("task"), until=DONE if task.cont is None else task.cont.label)


# Rule arguments are plain integers that pick among the steps legal right now: a fixed strategy Hypothesis can
# cache and shrink (towards the first legal step), where drawing from a fresh list every step costs a new strategy.
PICK = st.integers(min_value=0, max_value=255)
PLAN = st.lists(st.tuples(st.sampled_from(ACTIONS), PICK), max_size=PLAN_LENGTH)


# A guest's run inside one KVM_RUN: per VM entry, whether the guest computes, and the plan until the next entry.
ENTRIES = st.lists(st.tuples(st.booleans(), PLAN), min_size=1, max_size=3)

# What a tracer asks of a stopped task in a ptrace session, before it lets it continue.
REQUESTS = st.lists(st.sampled_from(("getfpregs", "setfpregs")), min_size=1, max_size=3)

# The system calls after which the task is gone: they have a rule of their own (``exit``).
DEATHS = ("exit", "abort")

# Syscalls the generic ``syscall`` rule picks apart from the others.
_OWN_RULES = DEATHS + ops.KVM_CALLS

# Whether the program computes (writes its registers) just before it enters the kernel: programs do, and a
# stale-register bug only shows when the registers hold something the stale copy does not.
COMPUTE = st.booleans()


def _pick(options: list, index: int):
    return options[index % len(options)]


class FpuMachine(_Base):
    """A rule per kind of event, each enabled only when a step of its kind is legal: a user task writes its
    registers; a user task makes a system call, or a task in the kernel runs on, following a plan of what happens
    at the path's interleaving points; a context switch; kernel FPU use by an interrupt or a kernel thread; and
    the two compound moves of the scheduler that matter to the lazy restore, ``migrate`` and
    ``switch_in_on_owner_cpu``."""

    def teardown(self):
        """Tell Hypothesis how many times this example got one context switch from a violation, so that its
        target phase mutates the examples that got there (docs/fuzzing.md, 'Steering'). Times entered, not steps
        spent, so that an example scores by making new such states, each a new chance for the switch that shows
        the bug, rather than by lingering in one. Only when there were some: on a correct kernel there are none,
        and the target phase then leaves the campaign as it was. (Not in the naive machine: the benchmark's
        baseline stays naive.)"""
        if self.stale:
            target(float(self.stale), label="stale-cache")

    @initialize()
    def boot(self):
        """The scheduler starts a user task on each CPU and it returns to user mode: every example begins with
        live registers to cache. Recorded as steps, so a case replays from the model's initial state."""
        for cpu, task in enumerate(t.name for t in self.world.tasks if t.kind == "user" and t.alive):
            if cpu < len(self.world.cpus):
                self.apply(Step.make("schedule", cpu=cpu, next=task))
                self.apply(Step.make("run", task=task, until=DONE))

    @precondition(lambda self: self._can_act("user_write"))
    @rule(pick=PICK)
    def user_write(self, pick):
        steps, _ = self._program_steps("user_write", pick)
        if steps:
            self.apply(steps[0])

    @precondition(lambda self: self._can_act("syscall"))
    @rule(pick=PICK, plan=PLAN, compute=COMPUTE, data=st.data())
    def syscall(self, pick, plan, compute, data):
        """A system call other than exit and abort (which have their own rule, so tasks do not die at every fourth
        call). KVM's are one choice among them, not a rule of their own: a rule more would thin out every other
        rule's share (the seed's bug took several times more examples with one). The vCPU is created first if the
        program has none; KVM_RUN goes on with the guest's run, drawn only then (drawn for every call, it cost a
        sixth of a campaign's time on machines without KVM)."""
        calls, pick = self._program_steps("syscall", pick)
        steps = [s for s in calls if s.get("call") not in _OWN_RULES]
        kvm = [s for s in calls if s.get("call") in ops.KVM_CALLS]
        if not steps + kvm:
            return
        step = _pick(steps + kvm, pick)
        if step.get("call") == "kvm_create_vcpu":
            self.apply(step)
            self.follow(step.get("task"), ())
            step = Step.make("syscall", task=step.get("task"), call="kvm_run")
            if step not in self.model.enabled(self.world):  # the task was moved off its CPU, or died
                return
        self._enter([step], 0, plan, compute)
        if step.get("call") == "kvm_run":
            self._run_guest(step.get("task"), data.draw(ENTRIES, label="entries"))

    @precondition(lambda self: bool(self._exits) and (self.world.free == () or any(
        self._tagged_elsewhere(s.get("task")) for s in self._exits)))
    @rule(pick=PICK, plan=PLAN, dump=st.booleans())
    def exit(self, pick, plan, dump):
        """A task exits, freeing its task_struct (the next fork gets it back): when no slot is free, so the
        population stays up, or when a task's fpu is still named by another CPU's owner tag -- such tasks come
        first, since their exit leaves a stale tag for a fork to meet. With ``dump`` another task dies by
        ``abort()``, its core dump first (``ptrace=yes``); a tagged task always by ``exit()``, whose path has no
        core dump's scheduling points to leave it paused on the way (measured: with aborts there, a ci campaign
        met a freed fpu still tagged 0-4 times instead of 4-12)."""
        step = _pick(sorted(self._exits, key=lambda s: not self._tagged_elsewhere(s.get("task"))), pick)
        aborts = [s for s in self.legal["syscall"] if s.get("call") == "abort" and s.get("task") == step.get("task")]
        if step.get("call") == "exit" and self._tagged_elsewhere(step.get("task")):
            aborts = []
        self._enter(aborts if dump and aborts else [step], 0, plan)

    def _can_act(self, op: str) -> bool:
        return op in self.legal or bool(self._returning)

    @property
    def _returning(self) -> list[str]:
        """User tasks inside a kernel path (not in guest code), running on a CPU or switched out and runnable: a
        rule for what a program does (compute, make a call, take a signal, ...) may pick one, switch it back in
        if it is out, and follow it back to user mode first. Most scheduler moves leave a task preempted on its
        way out; without the running ones, those rules were enabled in a quarter of the draws and the
        scheduler's in nearly all, and without the switched-out ones such a task waited for a scheduler rule to
        be switched in again (docs/fuzzing.md, 'Where the examples go')."""
        def compute():
            tasks, movable = self.world.tasks, {i for i, _ in self._moves()}
            running = [t.name for i, t in enumerate(tasks) if t.kind == "user" and t.alive and t.cont is not None
                       and t.mode != GUEST_MODE and self.world.running_on(i) is not None]
            waiting = [t.name for i, t in enumerate(tasks) if t.kind == "user" and t.cont is not None
                       and i in movable and self.world.running_on(i) is None]
            return running + sorted(waiting)
        return self._once("returning", compute)

    def _program_steps(self, op: str, pick: int) -> tuple[list[Step], int]:
        """The ``op`` steps of one user task, picked among those that can take one now and those on their way back
        to user mode (followed there first, so they may have died or stopped: then none), and what is left of
        ``pick``."""
        actors = sorted({s.get("task") for s in self.legal.get(op, ())} | set(self._returning), key=self._rank_task)
        task = _pick(actors, pick)
        if task in self._returning:
            self._wake(task, pick)
            self.follow(task, ())
        return [s for s in self.legal.get(op, ()) if s.get("task") == task], pick // len(actors)

    def _wake(self, task: str, pick: int) -> None:
        """Switch ``task`` back in if it is out: on the CPU it last ran on when that CPU can take it, as the
        wake-up's ``select_task_rq()`` prefers an idle previous CPU, else on one ``pick`` chooses."""
        index = self.world.task_index(task)
        if self.world.running_on(index) is None:
            last, targets = self.world.tasks[index].cpu, self.preemptible_cpus
            self._move(task, last if last in targets else _pick(targets, pick), pick)

    def _enter(self, steps: list[Step], pick: int, plan, compute: bool = False) -> None:
        """Take one of ``steps`` (a way into the kernel), the program computing first if ``compute``, and follow
        the task's path with ``plan``."""
        step = _pick(steps, pick)
        if compute:
            self.apply(Step.make("user_write", task=step.get("task")))
        self.apply(step)
        self.follow(step.get("task"), plan)

    @property
    def _exits(self) -> list[Step]:
        """A way to die for each task that can: ``exit()`` if the machine has it, else ``abort()``."""
        deaths: dict[str, Step] = {}
        for s in self.legal.get("syscall", ()):
            if s.get("call") == "exit" or (s.get("call") == "abort" and s.get("task") not in deaths):
                deaths[s.get("task")] = s
        return list(deaths.values())

    def _tagged_elsewhere(self, name: str) -> bool:
        """Another CPU's owner tag still names the task's fpu: its exit leaves a stale tag for a fork to meet."""
        task = self.world.tasks[self.world.task_index(name)]
        return any(cpu.owner == task.fpu for c, cpu in enumerate(self.world.cpus) if c != task.cpu)

    @precondition(lambda self: self._can_act("fork"))
    @rule(pick=PICK, plan=PLAN)
    def fork(self, pick, plan):
        steps, pick = self._program_steps("fork", pick)
        if steps:
            self._enter(steps, pick, plan)

    @precondition(lambda self: bool(self._forkers))
    @rule(pick=PICK, replacement=PICK, plan=PLAN)
    def fork_into_cached_fpu(self, pick, replacement, plan):
        """Fork while the task_struct the allocator will hand out has an fpu a CPU's owner tag still names: where
        fpu identity reuse bugs show (a compound move, like ``switch_in_on_owner_cpu``). The forking task is
        brought to user mode on a CPU whose tag does not name that fpu first, moved there if need be: a return to
        user mode on the tagged CPU would retag it, and a fork is only made from user mode."""
        task, to = _pick(self._forkers, pick)
        index = self.world.task_index(task)
        if self.world.running_on(index) != to:
            self._move(task, to, replacement)
        if self.world.tasks[index].mode != "user":
            self.follow(task, ())
        forks = [s for s in self.legal.get("fork", ()) if s.get("task") == task]
        if forks and self._free_fpu_cached():
            self._enter(forks, 0, plan)

    @property
    def _forkers(self) -> list[tuple[str, int]]:
        """(user task, CPU) where the task could fork while the next free task_struct's fpu is cached: in user mode
        on an untagged CPU already, or movable to one."""
        def compute():
            if not self._free_fpu_cached():
                return []
            fpu = self.world.tasks[self.world.free[0]].fpu
            untagged = {c for c, cpu in enumerate(self.world.cpus) if cpu.owner != fpu}
            found = [(t.name, self.world.running_on(i)) for i, t in enumerate(self.world.tasks)
                     if t.kind == "user" and t.mode == "user" and self.world.running_on(i) in untagged]
            found += [(self.world.tasks[i].name, to) for i, to in self._moves()
                      if self.world.tasks[i].kind == "user" and to in untagged and self.world.tasks[i].alive]
            return found
        return self._once("forkers", compute)

    def _free_fpu_cached(self) -> bool:
        free = self.world.free
        return bool(free) and any(cpu.owner == self.world.tasks[free[0]].fpu for cpu in self.world.cpus)

    @precondition(lambda self: self._can_act("signal"))
    @rule(pick=PICK, plan=PLAN, compute=COMPUTE)
    def signal(self, pick, plan, compute):
        steps, pick = self._program_steps("signal", pick)
        if steps:
            self._enter(steps, pick, plan, compute)

    @precondition(lambda self: self._can_act("frame_write"))
    @rule(pick=PICK)
    def frame_write(self, pick):
        steps, _ = self._program_steps("frame_write", pick)
        if steps:
            self.apply(steps[0])

    @precondition(lambda self: self._can_act("sigreturn"))
    @rule(pick=PICK, plan=PLAN, compute=COMPUTE)
    def sigreturn(self, pick, plan, compute):
        steps, pick = self._program_steps("sigreturn", pick)
        if steps:
            self._enter(steps, pick, plan, compute)

    @precondition(lambda self: "vmexit" in self.legal)
    @rule(pick=PICK, entries=ENTRIES)
    def guest(self, pick, entries):
        """A guest left running (its KVM_RUN was stopped on the way and resumed by ``run``) runs on."""
        self._run_guest(_pick(self.legal["vmexit"], pick).get("task"), entries)

    def _run_guest(self, task: str, entries) -> None:
        """The guest's run in one rule, so that a vCPU does not hold its CPU in guest mode (where it can be neither
        switched nor interrupted) across other rules: per entry the guest computes (writes its registers) or not
        and exits to KVM, the entry's plan deciding what happens before the next entry (preemption, migration,
        interrupts with the guest's buffer attached); the last exit goes to the VMM, KVM_RUN swapping the task's
        own state back on the way."""
        index = self.world.task_index(task)
        for number, (write, plan) in enumerate(entries, 1):
            if self.world.tasks[index].mode != GUEST_MODE:
                return  # a plan stopped or switched the task out before the next entry
            if write:
                self.apply(Step.make("guest_write", task=task))
            self.apply(Step.make("vmexit", task=task, exit="user" if number == len(entries) else "kernel"))
            self.follow(task, plan)
    @precondition(lambda self: "stop" in self.legal or bool(self._stopped))
    @rule(pick=PICK, plan=PLAN, compute=COMPUTE, requests=REQUESTS, tracer=PICK, resume=st.booleans(), where=PICK)
    def trace(self, pick, plan, compute, requests, tracer, resume, where):
        """A ptrace session, as a debugger runs one: a task running in user mode is stopped for its tracer and runs
        to its stop (following the plan) -- or a task stopped earlier is taken up again; a tracer makes its
        ``requests`` (woken by the stop if it was not in user mode); if ``resume``, it lets the tracee continue,
        and the woken tracee is switched in and runs back to user mode -- on the CPU it last ran on if that CPU can
        take it, as the wake-up's ``select_task_rq()`` prefers an idle previous CPU, else on one ``where`` picks. A
        compound move, like ``migrate``: what the tracee left cached where it stopped is still there when the
        tracer writes its registers and when it runs again. A session cut short (the plan stopped the tracee on its
        way, or no tracer could act) or not resumed is taken up by a later one, with other rules acting between."""
        choice = _pick(self._stopped or self.legal["stop"], pick)  # one session at a time
        if isinstance(choice, Step):
            tracee = choice.get("task")
            self._enter([choice], 0, plan, compute)
        else:
            tracee = choice
        if not self._requests(tracee) and not self._tracer_ready(tracee, tracer):
            return
        for req in list(requests) + (["cont"] if resume else []):
            options = [s for s in self._requests(tracee) if s.get("req") == req]
            if not options:
                return
            request = _pick(options, tracer)
            self.apply(request)
            self.follow(request.get("task"), ())
        if resume and self.preemptible_cpus:
            self._wake(tracee, where)
            self.follow(tracee, ())

    @property
    def _stopped(self) -> list[str]:
        """Tasks stopped for a tracer that some task may trace."""
        return self._once("stopped", lambda: [t.name for i, t in enumerate(self.world.tasks)
                                              if t.alive and t.stop == STOP_TRACED and ops.tracers(self.world, i)])

    def _requests(self, tracee: str) -> list[Step]:
        return [s for s in self.legal.get("ptrace", ()) if s.get("target") == tracee]

    def _tracer_ready(self, tracee: str, pick: int) -> bool:
        """A tracer waits for its tracee's stop (in ``wait4()``), and the stop's notification wakes it: a task that
        may trace ``tracee`` and runs in the kernel follows its path back to user mode. (Switching in one that is
        not running as well made the sessions move so many tasks that a ci campaign met a freed fpu still tagged
        less often.) False if there is none, or it did not get there."""
        index = self.world.task_index(tracee)
        if self.world.tasks[index].stop != STOP_TRACED or not ops.tracers(self.world, index):
            return False
        name = self.world.tasks[_pick(ops.tracers(self.world, index), pick)].name
        who = self.world.task_index(name)
        if self.world.running_on(who) is None:
            return False
        self.follow(name, ())
        return bool(self._requests(tracee))

    @precondition(lambda self: "run" in self.legal)
    @rule(pick=PICK, plan=PLAN)
    def run(self, pick, plan):
        self.follow(_pick(self.legal["run"], pick).get("task"), plan)

    @precondition(lambda self: "schedule" in self.legal)
    @rule(pick=PICK)
    def schedule(self, pick):
        self.apply(_pick(self.legal["schedule"], pick))

    @precondition(lambda self: "irq" in self.legal or "kwork" in self.legal)
    @rule(pick=PICK, plan=PLAN)
    def kernel_fpu(self, pick, plan):
        step = _pick(self.legal.get("kwork", []) + self.legal.get("irq", []), pick)
        self.apply(step)
        if step.op == "kwork":
            self.follow(step.get("task"), plan)

    @precondition(lambda self: bool(self.migrations))
    @rule(pick=PICK, replacement=PICK)
    def migrate(self, pick, replacement):
        """Switch a task out on its CPU and in on another: the two context switches that move it."""
        task, to = _pick(self.migrations, pick)
        self._move(task, to, replacement)

    @precondition(lambda self: bool(self.cache_hits))
    @rule(pick=PICK, replacement=PICK)
    def switch_in_on_owner_cpu(self, pick, replacement):
        """Bring a task back to a CPU whose owner tag still names its fpu, and let it return to user mode: the
        lazy-restore fast path, where every stale-register bug must show (a skip needs a cache hit)."""
        task, to = _pick(self.cache_hits, pick)
        self._move(task, to, replacement)
        self.follow(task, ())


class NaiveMachine(_Base):
    """The baseline: one rule drawing uniformly among all legal steps (``run`` to the next point only)."""

    @rule(data=st.data())
    def any_step(self, data):
        steps = [step for group in self.legal.values() for step in group]
        self.apply(data.draw(st.sampled_from(steps), label="step"))


def machine_for(model: Model, campaign: Campaign, naive: bool = False) -> type[RuleBasedStateMachine]:
    """A machine class bound to one variant's model and one campaign."""
    base = NaiveMachine if naive else FpuMachine
    return type(f"{base.__name__}[{model.variant.name}]", (base,), {"model": model, "campaign": campaign})
